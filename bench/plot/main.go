package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/loadstone-lb/loadstone/internal/benchdata"
)

func main() {
	data := flag.String("data", "bench/data", "directory of the benchmarks' .jsonl records")
	out := flag.String("out", "bench", "directory to write the SVG files to")
	flag.Parse()
	written, err := run(*data, *out)
	for _, f := range written {
		fmt.Println(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
		os.Exit(1)
	}
}

// run draws what the records allow and returns the files written.
func run(dataDir, outDir string) ([]string, error) {
	var written []string
	var b1 []benchdata.B1
	if err := readLines(filepath.Join(dataDir, "b1.jsonl"), &b1); err != nil {
		return nil, err
	}
	var b6 []benchdata.B6
	if err := readLines(filepath.Join(dataDir, "b6.jsonl"), &b6); err != nil {
		return nil, err
	}
	if len(b1) > 0 {
		slices.SortFunc(b1, func(a, b benchdata.B1) int { return strings.Compare(a.Case, b.Case) })
		for name, draw := range map[string]func([]benchdata.B1) (*plot.Plot, error){
			"b1-timeline.svg": b1Timeline, "b1-handover.svg": b1Handover} {
			p, err := draw(b1)
			if err != nil {
				return written, err
			}
			f := filepath.Join(outDir, name)
			if err := p.Save(7*vg.Inch, 4*vg.Inch, f); err != nil {
				return written, err
			}
			written = append(written, f)
		}
	}
	var b2 []benchdata.B2
	if err := readLines(filepath.Join(dataDir, "b2.jsonl"), &b2); err != nil {
		return nil, err
	}
	if len(b2) > 0 {
		for name, draw := range map[string]func([]benchdata.B2) (*plot.Plot, error){
			"b2-failover.svg": b2Failover, "b2-timeline.svg": b2Timeline} {
			p, err := draw(b2)
			if err != nil {
				return written, err
			}
			f := filepath.Join(outDir, name)
			if err := p.Save(9*vg.Inch, 4.5*vg.Inch, f); err != nil {
				return written, err
			}
			written = append(written, f)
		}
	}
	var b9 []benchdata.B9
	if err := readLines(filepath.Join(dataDir, "b9.jsonl"), &b9); err != nil {
		return nil, err
	}
	if len(b9) > 0 {
		p, err := b9Install(b9)
		if err != nil {
			return written, err
		}
		f := filepath.Join(outDir, "b9-install.svg")
		if err := p.Save(9*vg.Inch, 4*vg.Inch, f); err != nil {
			return written, err
		}
		written = append(written, f)
	}
	if len(b6) > 0 {
		p, err := b6Time(b6)
		if err != nil {
			return written, err
		}
		f := filepath.Join(outDir, "b6-time.svg")
		if err := p.Save(7*vg.Inch, 4*vg.Inch, f); err != nil {
			return written, err
		}
		written = append(written, f)
	}
	slices.Sort(written)
	return written, nil
}

// readLines decodes one JSON value per line into *out (a slice); a missing file is empty.
func readLines[T any](path string, out *[]T) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
		*out = append(*out, v)
	}
	return sc.Err()
}

// b1Timeline: the share of successful connects around the failure, one line per case.
func b1Timeline(cases []benchdata.B1) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "B1: connects that succeeded, by start time (all runs)"
	p.X.Label.Text = "ms after the failure"
	p.Y.Label.Text = "share of connects OK"
	p.Y.Min, p.Y.Max = 0, 1.05
	p.Add(plotter.NewGrid())
	for i, c := range cases {
		xys := make(plotter.XYs, len(c.Timeline))
		for j, pt := range c.Timeline {
			xys[j] = plotter.XY{X: pt.Ms, Y: pt.OKFraction}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("timeline of %s: %w", c.Case, err)
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(c.Case, l)
	}
	p.Legend.Top = false
	p.Legend.Left = false
	return p, nil
}

// b1Handover: one box per case, the handover times of its runs, with the 500 ms target.
func b1Handover(cases []benchdata.B1) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "B1: handover (failure → router's entry names another node)"
	p.Y.Label.Text = "ms"
	p.Add(plotter.NewGrid())
	var names []string
	for i, c := range cases {
		if len(c.HandoverMs) == 0 {
			continue
		}
		b, err := plotter.NewBoxPlot(vg.Points(40), float64(len(names)), plotter.Values(c.HandoverMs))
		if err != nil {
			return nil, fmt.Errorf("handover of %s: %w", c.Case, err)
		}
		b.FillColor = plotutil.Color(i)
		p.Add(b)
		names = append(names, fmt.Sprintf("%s (%d runs)", c.Case, len(c.HandoverMs)))
	}
	p.NominalX(names...)
	target, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 500}, {X: float64(len(names)) - 0.5, Y: 500}})
	if err != nil {
		return nil, err
	}
	target.Color = color.RGBA{R: 200, A: 255}
	target.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(target)
	p.Legend.Add("target: 500 ms p99 (crash, link cut)", target)
	p.Y.Min = 0
	return p, nil
}

// b6Time: seconds until every Service has an IP, Loadstone and the floor, by count.
func b6Time(runs []benchdata.B6) (*plot.Plot, error) {
	slices.SortFunc(runs, func(a, b benchdata.B6) int { return a.Services - b.Services })
	p := plot.New()
	p.Title.Text = "B6: time until all Services have an IP"
	p.X.Label.Text = "Services"
	p.Y.Label.Text = "s"
	p.Add(plotter.NewGrid())
	floor, ours := make(plotter.XYs, len(runs)), make(plotter.XYs, len(runs))
	for i, r := range runs {
		floor[i] = plotter.XY{X: float64(r.Services), Y: r.FloorSeconds}
		ours[i] = plotter.XY{X: float64(r.Services), Y: r.LoadstoneSecs}
	}
	if err := plotutil.AddLinePoints(p, "floor (instant in-process assigner)", floor, "Loadstone controller", ours); err != nil {
		return nil, err
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Y.Min = 0
	return p, nil
}
