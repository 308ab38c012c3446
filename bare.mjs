;(await import('node:net')).default.createServer(()=>{}).listen(0,'127.0.0.1')
