package dag_test

import (
	"context"
	"fmt"
	"os"

	"github.com/dpsflow/dpsflow/dag"
)

func ExampleRunner() {
	reg := dag.NewRegistry()
	reg.MustRegister(dag.Kind{
		Name: "number", Version: "1",
		Outputs: []dag.Port{{Name: "out", Type: "float"}},
		Params:  []dag.Param{{Name: "value", Type: "float", Required: true}},
		Run: func(c *dag.Call) error {
			c.Set("out", c.Float("value"))
			return nil
		},
	})
	reg.MustRegister(dag.Kind{
		Name: "mul", Version: "1",
		Inputs:  []dag.Port{{Name: "a", Type: "float"}, {Name: "b", Type: "float"}},
		Outputs: []dag.Port{{Name: "out", Type: "float"}},
		Run: func(c *dag.Call) error {
			c.Set("out", c.In("a").(float64)*c.In("b").(float64))
			return nil
		},
	})

	g := &dag.Graph{Name: "example"}
	g.Add("x", "number", map[string]any{"value": 6}, nil)
	g.Add("y", "number", map[string]any{"value": 7}, nil)
	g.Add("product", "mul", nil, map[string]string{"a": "x.out", "b": "y.out"})

	dir, _ := os.MkdirTemp("", "dag-example")
	defer os.RemoveAll(dir)
	cache, err := dag.OpenCache(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	r := &dag.Runner{Registry: reg, Cache: cache}
	for range 2 {
		res, err := r.Run(context.Background(), g)
		if err != nil {
			fmt.Println(err)
			return
		}
		v, _ := res.Value("product.out")
		fmt.Println(v, res.Status["product"])
	}

	g.Node("y").Params["value"] = 8
	ds, _ := r.Explain(context.Background(), g)
	for _, d := range ds {
		fmt.Printf("%s: %s (%s)\n", d.Node, d.Action, d.Reason)
	}
	// Output:
	// 42 ran
	// 42 cached
	// x: reuse (cached)
	// y: run (params changed: value 7 → 8)
	// product: run (input b may change (upstream y will run))
}
