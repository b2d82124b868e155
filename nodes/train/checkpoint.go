package train

import (
	"cmp"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// checkpointFormat names the layout below; a change of layout changes the name.
const checkpointFormat = "dpsflow-train-checkpoint/1"

// checkpoint is the whole resumable state. Variables are stored bit for bit with their
// scope, name and trainable flag, so that loading recreates the context exactly; the host
// state is the step and the running loss (batches and noise are functions of the step).
type checkpoint struct {
	Format    string
	Step      int
	RunSum    float64
	RunWeight float64
	Seconds   float64
	Run       fingerprint
	Vars      []savedVar
}

// fingerprint is what must not change across a resume for the result to be the same as
// an uninterrupted run's. Steps and the checkpoint interval may change.
type fingerprint struct {
	Seed        uint64
	BatchSize   int
	LR          float64
	WarmupSteps int
	LRSchedule  string  // "cosine", or "" for constant (checkpoints made before schedules decode so)
	DecaySteps  int     // cosine only
	FinalLR     float64 // cosine only
	EMADecay    float64
	InitFrom    string // Config.InitFrom ("" for runs from random weights, and checkpoints made before it)
	Network     string // Config.Network ("" for the default network, and checkpoints made before it)
	TrainN      int
	Shape       [3]int // C, H, W
}

type savedVar struct {
	Scope, Name, DType string
	Dims               []int
	Trainable          bool
	Data               []byte
}

func (t *Trainer) fingerprint() fingerprint {
	c := t.cfg
	f := fingerprint{Seed: c.Seed, BatchSize: c.BatchSize, LR: c.LR, WarmupSteps: c.WarmupSteps,
		EMADecay: c.EMADecay, InitFrom: c.InitFrom, Network: c.Network, TrainN: t.train.N, Shape: [3]int{t.train.C, t.train.H, t.train.W}}
	if c.LRSchedule == "cosine" {
		// The decay's end is fixed when the run starts: a resume with more --steps goes on at FinalLR.
		f.LRSchedule, f.DecaySteps, f.FinalLR = c.LRSchedule, c.decaySteps(), c.FinalLR
	}
	return f
}

// CheckpointPath is the checkpoint of this run.
func (t *Trainer) CheckpointPath() string { return filepath.Join(t.cfg.OutDir, CheckpointFile) }

// SaveCheckpoint writes the state atomically: a temporary file in the same directory,
// synced, then renamed over the previous checkpoint, so a crash leaves either the old or
// the new checkpoint, never a torn one.
func (t *Trainer) SaveCheckpoint() error {
	if got := optimizers.GetGlobalStep(t.ctx); t.step > 0 && got != int64(t.step) {
		return fmt.Errorf("train: step counter %d disagrees with the host's %d", got, t.step)
	}
	ck := checkpoint{Format: checkpointFormat, Step: t.step, RunSum: t.runSum, RunWeight: t.runWeight,
		Seconds: t.seconds, Run: t.fingerprint()}
	for v := range t.ctx.IterVariables() {
		if !v.HasValue() {
			continue
		}
		value, err := v.Value()
		if err != nil {
			return fmt.Errorf("train: checkpoint: %s: %w", v.ScopeAndName(), err)
		}
		sv := savedVar{Scope: v.Scope(), Name: v.Name(), DType: v.DType().String(),
			Dims: slices.Clone(value.Shape().Dimensions), Trainable: v.Trainable}
		if err := value.ConstBytes(func(b []byte) { sv.Data = slices.Clone(b) }); err != nil {
			return fmt.Errorf("train: checkpoint: %s: %w", v.ScopeAndName(), err)
		}
		ck.Vars = append(ck.Vars, sv)
	}
	return writeAtomic(t.CheckpointPath(), func(w io.Writer) error { return gob.NewEncoder(w).Encode(&ck) })
}

func writeAtomic(path string, write func(io.Writer) error) error {
	if err := atomicfile.WriteWith(path, 0o644, write); err != nil {
		return fmt.Errorf("train: writing %s: %w", path, err)
	}
	return nil
}

// load restores the checkpoint in OutDir, if there is one.
func (t *Trainer) load() error {
	path := t.CheckpointPath()
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	defer f.Close()
	var ck checkpoint
	if err := gob.NewDecoder(f).Decode(&ck); err != nil {
		return fmt.Errorf("train: reading checkpoint %s: %w (delete it to start over)", path, err)
	}
	if ck.Format != checkpointFormat {
		return fmt.Errorf("train: %s is a %q checkpoint, want %q", path, ck.Format, checkpointFormat)
	}
	if want := t.fingerprint(); ck.Run != want {
		return fmt.Errorf("train: checkpoint %s was made with different settings (%s); "+
			"use the same settings to continue it, or another output directory",
			path, diffFingerprints(ck.Run, want))
	}
	// A root context with unchecked creation: each variable is recreated where it was.
	ctx := t.ctx.Checked(false)
	for _, sv := range ck.Vars {
		dtype, err := dtypes.DTypeString(sv.DType)
		if err != nil {
			return fmt.Errorf("train: checkpoint %s: variable %s/%s: %w", path, sv.Scope, sv.Name, err)
		}
		value := tensors.FromShape(shapes.Make(dtype, sv.Dims...))
		var n int
		if err := value.MutableBytes(func(b []byte) { n = copy(b, sv.Data) }); err != nil {
			return err
		}
		if n != len(sv.Data) || uintptr(n) != value.Shape().Memory() {
			return fmt.Errorf("train: checkpoint %s: variable %s/%s has %d bytes for shape %s",
				path, sv.Scope, sv.Name, len(sv.Data), value.Shape())
		}
		ctx.InAbsPath(sv.Scope).VariableWithValue(sv.Name, value).SetTrainable(sv.Trainable)
	}
	t.step, t.runSum, t.runWeight, t.seconds = ck.Step, ck.RunSum, ck.RunWeight, ck.Seconds
	return nil
}

func diffFingerprints(got, want fingerprint) string {
	var out []string
	add := func(name string, g, w any) {
		if g != w {
			out = append(out, fmt.Sprintf("%s %v, now %v", name, g, w))
		}
	}
	add("seed", got.Seed, want.Seed)
	add("batch size", got.BatchSize, want.BatchSize)
	add("learning rate", got.LR, want.LR)
	add("warmup", got.WarmupSteps, want.WarmupSteps)
	add("learning-rate schedule", scheduleName(got), scheduleName(want))
	add("EMA decay", got.EMADecay, want.EMADecay)
	// cmp.Or labels the empty value, which is also what older checkpoints hold.
	add("initial weights", cmp.Or(got.InitFrom, "random"), cmp.Or(want.InitFrom, "random"))
	add("network", cmp.Or(got.Network, "the default"), cmp.Or(want.Network, "the default"))
	add("training images", got.TrainN, want.TrainN)
	add("image shape", got.Shape, want.Shape)
	return strings.Join(out, ", ")
}

func scheduleName(f fingerprint) string {
	c := Config{LRSchedule: f.LRSchedule, DecaySteps: f.DecaySteps, FinalLR: f.FinalLR}
	return c.scheduleString()
}
