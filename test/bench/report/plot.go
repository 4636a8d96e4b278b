package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// series is one line of a chart.
type series struct {
	name   string
	points [][2]float64 // x, y; non-positive values are dropped on log axes
	dashed bool
	color  int // index into palette, stable per peer across charts
}

// chart is a line chart with optional log axes, rendered as standalone SVG
// with no external fonts or scripts.
type chart struct {
	title, xlabel, ylabel string
	logX, logY            bool
	series                []series
}

var palette = []string{"#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#1f78b4"}

const (
	svgW, svgH             = 760, 420
	padL, padR, padT, padB = 70, 210, 40, 50
	plotW, plotH           = svgW - padL - padR, svgH - padT - padB
)

type axis struct {
	log      bool
	min, max float64
}

func (a axis) pos(v float64, length float64) float64 {
	lo, hi, x := a.min, a.max, v
	if a.log {
		lo, hi, x = math.Log10(lo), math.Log10(hi), math.Log10(v)
	}
	if hi == lo {
		return length / 2
	}
	return (x - lo) / (hi - lo) * length
}

// ticks returns tick values: powers of ten (and 2×, 5× when few) on log
// axes, about six round numbers on linear ones.
func (a axis) ticks() []float64 {
	var t []float64
	if a.log {
		lo, hi := math.Floor(math.Log10(a.min)), math.Ceil(math.Log10(a.max))
		mult := []float64{1}
		if hi-lo <= 3 {
			mult = []float64{1, 2, 5}
		}
		for e := lo; e <= hi; e++ {
			for _, m := range mult {
				v := m * math.Pow(10, e)
				if v >= a.min*0.999 && v <= a.max*1.001 {
					t = append(t, v)
				}
			}
		}
		return t
	}
	step := niceStep((a.max - a.min) / 6)
	for v := math.Ceil(a.min/step) * step; v <= a.max+step/1e6; v += step {
		t = append(t, v)
	}
	return t
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*e >= raw {
			return m * e
		}
	}
	return 10 * e
}

func fmtTick(v float64) string {
	switch {
	case v >= 1e6 && math.Mod(v, 1e6) == 0:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3 && math.Mod(v, 1e3) == 0:
		return fmt.Sprintf("%gk", v/1e3)
	case v >= 1:
		return fmt.Sprintf("%g", math.Round(v*100)/100)
	}
	return fmt.Sprintf("%g", v)
}

func (c chart) axes() (x, y axis, ok bool) {
	x = axis{log: c.logX, min: math.Inf(1), max: math.Inf(-1)}
	y = axis{log: c.logY, min: math.Inf(1), max: math.Inf(-1)}
	for _, s := range c.series {
		for _, p := range s.points {
			if (c.logX && p[0] <= 0) || (c.logY && p[1] <= 0) {
				continue
			}
			x.min, x.max = math.Min(x.min, p[0]), math.Max(x.max, p[0])
			y.min, y.max = math.Min(y.min, p[1]), math.Max(y.max, p[1])
			ok = true
		}
	}
	if !ok {
		return x, y, false
	}
	pad := func(a *axis) {
		if a.log {
			a.min, a.max = math.Pow(10, math.Floor(math.Log10(a.min))), math.Pow(10, math.Ceil(math.Log10(a.max)))
			if a.min == a.max {
				a.max *= 10
			}
			return
		}
		if a.min > 0 {
			a.min = 0
		}
		if a.max == a.min {
			a.max = a.min + 1
		}
		a.max += (a.max - a.min) * 0.05
	}
	pad(&x)
	pad(&y)
	return x, y, true
}

// svg renders the chart; a chart with no plottable point renders a note.
func (c chart) svg() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", padL, html.EscapeString(c.title))
	x, y, ok := c.axes()
	if !ok {
		fmt.Fprintf(&b, `<text x="%d" y="%d">no data measured</text></svg>`+"\n", padL, padT+plotH/2)
		return b.String()
	}
	px := func(v float64) float64 { return padL + x.pos(v, plotW) }
	py := func(v float64) float64 { return padT + plotH - y.pos(v, plotH) }
	// Grid and ticks.
	for _, t := range x.ticks() {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>`+"\n", px(t), padT, px(t), padT+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(t), padT+plotH+16, fmtTick(t))
	}
	for _, t := range y.ticks() {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>`+"\n", padL, py(t), padL+plotW, py(t))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", padL-6, py(t), fmtTick(t))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", padL, padT, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", padL+plotW/2, svgH-10, html.EscapeString(c.xlabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", padT+plotH/2, html.EscapeString(c.ylabel))
	// Series and legend.
	for i, s := range c.series {
		color := palette[s.color%len(palette)]
		var pts []string
		for _, p := range s.points {
			if (c.logX && p[0] <= 0) || (c.logY && p[1] <= 0) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p[0]), py(p[1])))
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), color, dash)
		}
		for _, p := range pts {
			xy := strings.Split(p, ",")
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3.5" fill="%s"/>`+"\n", xy[0], xy[1], color)
		}
		ly := padT + 10 + i*20
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", svgW-padR+15, ly, svgW-padR+40, ly, color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d" dominant-baseline="middle">%s</text>`+"\n", svgW-padR+46, ly, html.EscapeString(s.name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}
