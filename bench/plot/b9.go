package main

import (
	"fmt"
	"image/color"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/loadstone-lb/loadstone/internal/benchdata"
)

// b9Install: one box per case (router ← speaker), the install times of its runs in
// seconds, with the 5 s target.
func b9Install(cases []benchdata.B9) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "B9: BGP scale (Apply → all prefixes in the router's kernel)"
	p.Y.Label.Text = "s"
	p.Add(plotter.NewGrid())
	var names []string
	for i, c := range cases {
		if len(c.InstallMs) == 0 {
			continue
		}
		secs := make(plotter.Values, len(c.InstallMs))
		for j, v := range c.InstallMs {
			secs[j] = v / 1000
		}
		b, err := plotter.NewBoxPlot(vg.Points(40), float64(len(names)), secs)
		if err != nil {
			return nil, fmt.Errorf("install times of %s: %w", c.Case, err)
		}
		b.FillColor = plotutil.Color(i)
		p.Add(b)
		// "router ← speaker" on two lines: the labels are long.
		label := strings.Replace(c.Case, " ← ", "\n← ", 1)
		names = append(names, fmt.Sprintf("%s\n%d prefixes, %d runs", label, c.Prefixes, len(c.InstallMs)))
	}
	p.NominalX(names...)
	target, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 5}, {X: float64(len(names)) - 0.5, Y: 5}})
	if err != nil {
		return nil, err
	}
	target.Color = color.RGBA{R: 200, A: 255}
	target.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(target)
	p.Legend.Add("target: 10k prefixes installed < 5 s", target)
	p.Legend.Top = true
	p.Y.Min = 0
	return p, nil
}
