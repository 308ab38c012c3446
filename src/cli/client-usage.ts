/** `midge pub --help` and `midge sub --help`: mosquitto_pub's and mosquitto_sub's option lists, for our flags. */
import { VERSION } from '../version.js'

const shared = {
  connection: ` -A : bind the outgoing socket to this host/ip address. Use to control which interface
      the client communicates over.
 -c : disable clean session/enable persistent client mode
      When this argument is used, the broker will be instructed not to clean existing sessions
      for the same client id when the client connects, and sessions will never expire when the
      client disconnects. MQTT v5 clients can change their session expiry interval with the -x
      argument.
 -d : enable debug messages.
 -D : Define MQTT v5 properties: -D command identifier value, e.g. -D publish content-type text/plain
      or -D connect user-property key value. Implies -V mqttv5.
 -h : mqtt host to connect to. Defaults to localhost.
 -i : id to use for this client. Defaults to an id assigned by the broker.
 -I : define the client id as id_prefix appended with the process id. Useful for when the
      broker is using the clientid_prefixes option.
 -k : keep alive in seconds for this client. Defaults to 60.
 -L : specify user, password, hostname, port and topic as a URL in the form:
      mqtt(s)://[username[:password]@]host[:port]/topic (ws:// and wss:// for WebSockets)
 -M : the maximum inflight messages for QoS 1/2.
 -p : network port to connect to. Defaults to 1883 for plain MQTT and 8883 for MQTT over TLS.
 -P : provide a password
 -u : provide a username
 -V : specify the version of the MQTT protocol to use when connecting.
      Can be mqttv5, mqttv311 or mqttv31 (or 5, 311, 31). Defaults to mqttv311.
 -x : Set the session-expiry-interval property on the CONNECT packet. Applies to MQTT v5
      clients only. Set to 0-4294967294 to specify the session will expire in that many
      seconds after the client disconnects, or use -1, 4294967295, or ∞ for a session
      that does not expire. Defaults to -1 if -c is also given, or 0 if -c not given.
 --help : display this message.
 --nodelay : accepted for compatibility; Nagle's algorithm is always disabled.
 --quiet : don't print error messages.
 --unix : connect to a broker through a unix domain socket instead of a TCP socket,
          e.g. /tmp/mosquitto.sock
 --will-payload : payload for the client Will, which is sent by the broker in case of
                  unexpected disconnection. If not given and will-topic is set, a zero
                  length message will be sent.
 --will-qos : QoS level for the client Will.
 --will-retain : if given, make the client Will retained.
 --will-topic : the topic on which to publish the client Will.`,
  tls: ` --cafile : path to a file containing trusted CA certificates to enable encrypted
            communication. Only these CAs are trusted.
 --capath : path to a directory containing trusted CA certificates to enable encrypted
            communication. Only these CAs are trusted.
            Without --cafile or --capath, port 8883 and mqtts:// use the system trust store.
 --cert : client certificate for authentication, if required by server.
 --key : client private key for authentication, if required by server.
 --ciphers : openssl compatible list of TLS ciphers to support.
 --tls-version : TLS protocol version, can be one of tlsv1.3 tlsv1.2 or tlsv1.1.
 --tls-alpn : TLS application layer protocol negotiation protocol to offer.
 --tls-use-os-certs : Load and trust OS provided CA certificates.
 --insecure : do not check that the server certificate hostname matches the remote
              hostname. Using this option means that you cannot be sure that the
              remote host is the server you wish to connect to and so is insecure.
              Do not use this option in a production environment.`,
}

export function pubUsage (): string {
  return `midge pub is a simple mqtt client that will publish a message on a single topic and exit.
midge pub version ${VERSION}, flag-compatible with mosquitto_pub 2.0.

Usage: midge pub {[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL}
                 {-f file | -l | -n | -m message | -s}
                 [-c] [-k keepalive] [-q qos] [-r] [--repeat N] [--repeat-delay time] [-x session-expiry]
                 [-A bind_address] [--nodelay]
                 [-i id] [-I id_prefix]
                 [-d] [--quiet]
                 [-M max_inflight]
                 [-V protocol-version]
                 [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                 [{--cafile file | --capath dir} [--cert file] [--key file]
                   [--ciphers ciphers] [--insecure] [--tls-version version]
                   [--tls-alpn protocol] [--tls-use-os-certs]]
                 [-D command identifier value]
       midge pub --help

${shared.connection}
 -f : send the contents of a file as the message.
 -l : read messages from stdin, sending a separate message for each line.
 -m : message payload to send.
 -n : send a null (zero length) message.
 -q : quality of service level to use for all messages. Defaults to 0.
 -r : message should be retained.
 -s : read message from stdin, sending the entire input as a message.
 -t : mqtt topic to publish to.
 --repeat : if publish mode is -f, -m, or -s, then repeat the publish N times.
 --repeat-delay : if using --repeat, wait time seconds between publishes. Defaults to 0.
${shared.tls}

See docs/cli.md for more information.
`
}

export function subUsage (): string {
  return `midge sub is a simple mqtt client that will subscribe to a set of topics and print all messages it receives.
midge sub version ${VERSION}, flag-compatible with mosquitto_sub 2.0.

Usage: midge sub {[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL [-t topic]}
                 [-c] [-k keepalive] [-q qos] [-x session-expiry-interval]
                 [-C msg_count] [-E] [-R] [--retained-only] [--remove-retained] [-T filter_out] [-U topic ...]
                 [-F format] [--pretty]
                 [-W timeout_secs]
                 [-A bind_address] [--nodelay]
                 [-i id] [-I id_prefix]
                 [-d] [-N] [--quiet] [-v]
                 [-V protocol-version]
                 [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                 [{--cafile file | --capath dir} [--cert file] [--key file]
                   [--ciphers ciphers] [--insecure] [--tls-version version]
                   [--tls-alpn protocol] [--tls-use-os-certs]]
                 [-D command identifier value]
       midge sub --help

${shared.connection}
 -C : disconnect and exit after receiving the 'msg_count' messages.
 -E : Exit once all subscriptions have been acknowledged by the broker.
 -F : output format (see docs/cli.md: %t topic, %p payload, %j JSON, @H strftime, ...).
 -N : do not add an end of line character when printing the payload.
 -q : quality of service level to use for the subscription. Defaults to 0.
 -R : do not print stale messages (those with retain set).
 -t : mqtt topic to subscribe to. May be repeated multiple times.
 -T : topic string to filter out of results. May be repeated.
 -U : unsubscribe from a topic. May be repeated.
 -v : print published messages verbosely.
 -W : Specifies a timeout in seconds how long to process incoming MQTT messages.
 --pretty : print formatted output rather than minimised output when using the
            JSON output format option.
 --random-filter : only print a percentage of received messages. Set to 100 to have all
                   messages printed, 50.0 to have half of the messages received on average
                   printed, and so on.
 --retain-as-published : set the MQTT v5 retain-as-published subscription option.
 --retained-only : only handle messages with the retained flag set, and exit when the
                   first non-retained message is received.
 --remove-retained : send a message to the server to clear any received retained messages
                     Use -T to filter out messages you do not want to be cleared.
${shared.tls}

See docs/cli.md for more information.
`
}

/**
 * What `midge pub`/`midge sub` print for a command line they refuse (exit code 1), in mosquitto's order: the
 * full usage on stdout when mosquitto_pub shows it, then the error and, usually, a hint on stderr.
 */
export function refusedArgsOutput (kind: 'pub' | 'sub', error: string, showUsage: 'hint' | 'full' | 'none'): { stdout: string; stderr: string } {
  return {
    stdout: showUsage === 'full' ? (kind === 'pub' ? pubUsage() : subUsage()) : '',
    stderr: error + '\n' + (showUsage === 'hint' ? `\nUse 'midge ${kind} --help' to see usage.\n` : ''),
  }
}
