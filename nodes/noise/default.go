package noise

// What a run (task YAML, `dpsflow run --noise`, the DAG's noise node) uses when it names no
// Poisson likelihood: the paper's Λ = 1/(2y) weighted norm with Λ floored at PaperRunFloor
// counts. At the paper's one-count floor, zero-count background pixels dominate dark images
// (MNIST, 8 digits, 100 steps, scale 4: sr4 15.75 dB, deblur-gauss 23.58 dB, against 22.38
// and 26.69 for the plain norm); floored at 32 counts it is at least as good as the plain
// norm on both (22.78 and 27.01 dB), and floors of 16–64 counts were never worse.
const (
	DefaultPoissonForm = FormPaper
	PaperRunFloor      = 32.0
)

// RunFloor is the floor, in counts, a run uses for form when none is given: PaperRunFloor
// for the paper's form, DefaultFloor (one count) for the others. NewPoissonForm's own
// default stays DefaultFloor, so NewPoisson(rate) is the paper's form exactly.
func RunFloor(form PoissonForm) float64 {
	if form == FormPaper {
		return PaperRunFloor
	}
	return DefaultFloor
}
