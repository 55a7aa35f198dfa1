package main

import (
	"fmt"
	"image/color"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/loadstone-lb/loadstone/internal/benchdata"
)

// b2Floor is where b2Failover's log axis starts: a run in which no connect failed
// (recovery 0) is drawn there.
const b2Floor = 10.0

// b2Failover: per case a box of the runs' recovery times (cut → traffic flows again) with
// each run as a point, on a log axis (BFD cases take hundreds of ms, hold-timer cases
// seconds), and the 300 ms target.
func b2Failover(cases []benchdata.B2) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "B2: BGP failover, node link cut (cut → traffic flows again)"
	p.Y.Label.Text = "ms (log)"
	p.Y.Scale = plot.LogScale{}
	var ticks []plot.Tick
	for _, v := range []float64{10, 30, 100, 300, 1000, 3000, 10000, 30000} {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Add(plotter.NewGrid())
	var names []string
	for i, c := range cases {
		if len(c.RecoveryMs) == 0 {
			continue
		}
		x := float64(len(names))
		vals := make(plotter.Values, len(c.RecoveryMs))
		pts := make(plotter.XYs, len(c.RecoveryMs))
		for j, v := range c.RecoveryMs {
			vals[j] = math.Max(v, b2Floor)
			// Spread the points sideways so that equal runs stay visible.
			pts[j] = plotter.XY{X: x + 0.25 + 0.1*float64(j%5)/4, Y: vals[j]}
		}
		b, err := plotter.NewBoxPlot(vg.Points(30), x, vals)
		if err != nil {
			return nil, fmt.Errorf("recovery of %s: %w", c.Case, err)
		}
		b.FillColor = plotutil.Color(i)
		p.Add(b)
		s, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, fmt.Errorf("recovery of %s: %w", c.Case, err)
		}
		s.GlyphStyle = draw.GlyphStyle{Color: color.Black, Radius: vg.Points(1.5), Shape: draw.CircleGlyph{}}
		p.Add(s)
		label := strings.Replace(c.Case, ", ", "\n", 1)
		names = append(names, fmt.Sprintf("%s\n%d next hops, %d runs", label, c.Nexthops, len(c.RecoveryMs)))
	}
	p.NominalX(names...)
	// Margins so that the outer labels (three lines, long) stay inside the picture.
	p.X.Min, p.X.Max = -0.7, float64(len(names))-0.2
	target, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: 300}, {X: p.X.Max, Y: 300}})
	if err != nil {
		return nil, err
	}
	target.Color = color.RGBA{R: 200, A: 255}
	target.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(target)
	p.Legend.Add("target with BFD: 300 ms p99", target)
	p.Legend.Top = true
	p.Legend.Left = true
	// Room above the highest box for the legend.
	p.Y.Min, p.Y.Max = b2Floor, math.Max(p.Y.Max*4, 1000)
	return p, nil
}

// b2Timeline: the share of successful connects around the cut (all runs), one line per
// case, over the first 1.5 s: the BFD cases recover within it, the hold-timer cases do
// not (only the cut node's share of the connects fails).
func b2Timeline(cases []benchdata.B2) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "B2: connects that succeeded, by start time (all runs)"
	p.X.Label.Text = "ms after the link cut"
	p.Y.Label.Text = "share of connects OK"
	p.X.Min, p.X.Max = -100, 1500
	p.Y.Min, p.Y.Max = 0, 1.05
	p.Add(plotter.NewGrid())
	for i, c := range cases {
		var xys plotter.XYs
		for _, pt := range c.Timeline {
			if pt.Ms <= p.X.Max {
				xys = append(xys, plotter.XY{X: pt.Ms, Y: pt.OKFraction})
			}
		}
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("timeline of %s: %w", c.Case, err)
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(c.Case, l)
	}
	// Bottom left: the lines stay above the cut node's share of the connects.
	p.Legend.Top = false
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(10)
	return p, nil
}
