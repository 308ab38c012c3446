// The rate charts: two series (in, out) over the last five minutes of 1-second `stats` events, drawn by hand
// on a canvas (a chart library would outweigh the whole page). Redrawn at most once per animation frame and
// not at all while the tab is hidden. Colours come from style.css's custom properties.

export const HistorySeconds = 300

export class RateChart {
  constructor(canvas, format) {
    this.canvas = canvas
    this.format = format
    this.in = new Float64Array(HistorySeconds)
    this.out = new Float64Array(HistorySeconds)
    this.count = 0
    this.head = 0
    this.pending = false
  }

  push(a, b) {
    this.in[this.head] = Number.isFinite(a) ? a : 0
    this.out[this.head] = Number.isFinite(b) ? b : 0
    this.head = (this.head + 1) % HistorySeconds
    if (this.count < HistorySeconds) this.count++
    this.schedule()
  }

  schedule() {
    if (this.pending || document.hidden) return
    this.pending = true
    requestAnimationFrame(() => {
      this.pending = false
      this.draw()
    })
  }

  draw() {
    const c = this.canvas
    const ratio = window.devicePixelRatio || 1
    const w = Math.max(100, c.clientWidth)
    const h = Math.max(60, c.clientHeight)
    if (c.width !== Math.round(w * ratio) || c.height !== Math.round(h * ratio)) {
      c.width = Math.round(w * ratio)
      c.height = Math.round(h * ratio)
    }
    const g = c.getContext('2d')
    if (g === null) return
    const css = getComputedStyle(document.documentElement)
    const color = (name) => css.getPropertyValue(name).trim() || '#888'
    g.setTransform(ratio, 0, 0, ratio, 0, 0)
    g.clearRect(0, 0, w, h)
    let max = 0
    for (let i = 0; i < this.count; i++) max = Math.max(max, this.in[i], this.out[i])
    max = niceCeiling(max)
    const left = 56
    const top = 6
    const bottom = h - 16
    const plotW = w - left - 4
    // Grid and scale: 0, half, max; the time axis in minutes back from now.
    g.font = '11px system-ui, sans-serif'
    g.fillStyle = color('--muted')
    g.strokeStyle = color('--grid')
    g.lineWidth = 1
    g.textAlign = 'right'
    g.textBaseline = 'middle'
    for (const f of [0, 0.5, 1]) {
      const y = Math.round(bottom - f * (bottom - top)) + 0.5
      g.beginPath()
      g.moveTo(left, y)
      g.lineTo(w - 4, y)
      g.stroke()
      g.fillText(this.format(max * f), left - 4, y)
    }
    g.textAlign = 'center'
    g.textBaseline = 'alphabetic'
    // On a narrow screen every minute would not fit: then only the ends are labelled.
    const step = plotW / (HistorySeconds / 60) < 64 ? HistorySeconds / 60 : 1
    for (let m = 0; m <= HistorySeconds / 60; m += step) {
      const x = left + plotW - (m * 60 * plotW) / (HistorySeconds - 1)
      g.fillText(m === 0 ? 'now' : `-${m} min`, Math.min(Math.max(x, left + 14), w - 16), h - 3)
    }
    const series = (data, stroke) => {
      if (this.count === 0) return
      g.strokeStyle = stroke
      g.lineWidth = 1.5
      g.beginPath()
      for (let i = 0; i < this.count; i++) {
        // oldest first: the sample `count - i` seconds ago sits that far left of "now"
        const idx = (this.head - this.count + i + HistorySeconds) % HistorySeconds
        const x = left + plotW - ((this.count - 1 - i) * plotW) / (HistorySeconds - 1)
        const y = bottom - (data[idx] / max) * (bottom - top)
        if (i === 0) g.moveTo(x, y)
        else g.lineTo(x, y)
      }
      g.stroke()
    }
    series(this.in, color('--in'))
    series(this.out, color('--out'))
  }
}

/** 1, 2 or 5 times a power of ten, at least `v` (and at least 1, so an idle broker draws a flat line). */
export function niceCeiling(v) {
  if (!(v > 1)) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

