package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/dpsflow/dpsflow/xla"
	"github.com/spf13/cobra"
)

// doctorReport is what `dpsflow doctor --json` prints.
type doctorReport struct {
	Dpsflow   string            `json:"dpsflow_version"`
	Go        string            `json:"go_version"`
	Spec      string            `json:"backend_spec"`
	Backend   xla.BackendInfo   `json:"backend"`
	Tolerance float64           `json:"tolerance"`
	Checks    []xla.CheckResult `json:"checks"`
	OK        bool              `json:"ok"`
}

// errChecksFailed makes doctor exit non-zero after it printed its report.
var errChecksFailed = errors.New("gradient self-check failed")

func newDoctorCmd() *cobra.Command {
	var spec string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Report the backend and check that it differentiates everything DPS needs",
		Long: `doctor reports the backend, its devices and versions, then compares the autodiff gradient of
each building block of a DPS step (convolutions, reflect padding, pooling, strided slices, group
norm, attention, nearest upsampling) with central finite differences in float64, then the same
gradients computed in float32 (the precision, and on embedded the code paths, a DPS step uses)
with the float64 ones. It exits 1 if any check fails and 2 if the backend cannot be set up.

Backends: "embedded" (default, pure Go), "xla:cuda" / "xla:cpu" / "xla:tpu" (a PJRT plugin found
in PJRT_PLUGIN_LIBRARY_PATH, GoMLX's places or a JAX installation), or
"xla:/absolute/path/to/plugin.so". Nothing is downloaded unless ",auto_install" is appended.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			backend, err := xla.New(spec)
			if err != nil {
				return err
			}
			defer backend.Finalize()
			checks := xla.SelfCheck(backend)
			report := doctorReport{
				Dpsflow:   version(),
				Go:        runtime.Version(),
				Spec:      spec,
				Backend:   xla.DescribeBackend(backend),
				Tolerance: xla.SelfCheckTolerance,
				Checks:    checks,
				OK:        true,
			}
			if report.Spec == "" {
				report.Spec = xla.DefaultSpec
			}
			for _, c := range checks {
				report.OK = report.OK && c.OK
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(report); err != nil {
					return err
				}
			} else {
				printDoctor(out, report)
			}
			if !report.OK {
				return errChecksFailed
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&spec, "backend", "", backendFlagUsage)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object instead of text")
	return cmd
}

func printDoctor(w io.Writer, r doctorReport) {
	b := r.Backend
	fmt.Fprintf(w, "dpsflow  %s (%s)\n", r.Dpsflow, r.Go)
	fmt.Fprintf(w, "backend  %s: %s\n", b.Name, b.Description)
	fmt.Fprintf(w, "devices  %s\n", strings.Join(b.Devices, ", "))
	fmt.Fprintf(w, "gomlx    %s\n", b.GoMLXVersion)
	if b.PluginPath != "" {
		fmt.Fprintf(w, "plugin   %s (PJRT API %s)\n", b.PluginPath, b.PJRTVersion)
	}
	fmt.Fprintf(w, "\ngradient self-check: float64 autodiff vs central differences (tolerance %.0e), then\nfloat32 autodiff vs float64 autodiff (tolerance %.0e)\n", r.Tolerance, xla.Float32CheckTolerance)
	failed := 0
	for _, c := range r.Checks {
		status := "ok"
		if !c.OK {
			status = "FAIL"
			failed++
		}
		fmt.Fprintf(w, "  %-31s rel_error %-9.2e %s", c.Name, c.RelError, status)
		if c.Error != "" {
			fmt.Fprintf(w, "  (%s)", c.Error)
		}
		fmt.Fprintln(w)
	}
	if failed == 0 {
		fmt.Fprintf(w, "all %d checks passed\n", len(r.Checks))
	} else {
		fmt.Fprintf(w, "%d of %d checks FAILED\n", failed, len(r.Checks))
	}
}
