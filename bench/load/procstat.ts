/**
 * CPU and memory of a process (the broker under test) from /proc, and of this process.
 * All-thread user + system time, as `top` shows it; VmRSS as the kernel counts it.
 */
import { readFileSync } from 'node:fs'

const CLK_TCK = 100 // USER_HZ: fixed at 100 on every Linux ABI that Node supports

/** User + system CPU seconds of `pid`, or -1 if it cannot be read. */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
  } catch {
    return -1
  }
}

/** VmRSS of `pid` in kB, or -1 if it cannot be read. */
export function procRssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))
    return m ? Number(m[1]) : -1
  } catch {
    return -1
  }
}

/** This process's user and system CPU seconds, all threads. */
export function selfCpu(): { user: number; system: number } {
  const u = process.cpuUsage()
  return { user: u.user / 1e6, system: u.system / 1e6 }
}

/** Busy and stolen CPU seconds of the whole machine, all cores (first line of /proc/stat). */
export function machineCpu(): { busy: number; steal: number } {
  try {
    const line = readFileSync('/proc/stat', 'latin1').slice(0, 256).split('\n')[0]!
    const f = line.trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal
    const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!
    return { busy: busy / CLK_TCK, steal: f[7]! / CLK_TCK }
  } catch {
    return { busy: -1, steal: -1 }
  }
}
