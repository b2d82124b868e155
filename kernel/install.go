package kernel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
)

// DefaultKernelName is the kernel spec's directory name.
const DefaultKernelName = "dpsflow-go"

// InstallOptions says where to install the kernel spec.
type InstallOptions struct {
	Name       string // spec directory name; DefaultKernelName when empty
	Prefix     string // install under Prefix/share/jupyter/kernels; else the user's data dir
	Executable string // the dpsflow binary; the running executable when empty
	MaxMemory  string // the kernel's --max-memory (checked by ParseMemory); its default when empty
}

// KernelSpec is the kernel.json Jupyter reads.
type KernelSpec struct {
	Argv          []string       `json:"argv"`
	DisplayName   string         `json:"display_name"`
	Language      string         `json:"language"`
	InterruptMode string         `json:"interrupt_mode"`
	Metadata      map[string]any `json:"metadata,omitempty"`
}

// UserDataDir is Jupyter's per-user data directory: $JUPYTER_DATA_DIR, else the
// platform's default (~/.local/share/jupyter on Linux, honouring $XDG_DATA_HOME).
func UserDataDir() (string, error) {
	if d := os.Getenv("JUPYTER_DATA_DIR"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	switch runtime.GOOS {
	case "darwin":
		if err != nil {
			return "", err
		}
		return filepath.Join(home, "Library", "Jupyter"), nil
	case "windows":
		if d := os.Getenv("APPDATA"); d != "" {
			return filepath.Join(d, "jupyter"), nil
		}
		return "", errors.New("APPDATA is not set; pass --prefix or set JUPYTER_DATA_DIR")
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "jupyter"), nil
	}
	if err != nil {
		return "", fmt.Errorf("no home directory (%v): pass --prefix or set JUPYTER_DATA_DIR", err)
	}
	return filepath.Join(home, ".local", "share", "jupyter"), nil
}

// Install writes kernel.json and the logos, and returns the spec directory.
func Install(opts InstallOptions) (string, error) {
	name := opts.Name
	if name == "" {
		name = DefaultKernelName
	}
	if name != filepath.Base(name) || name == "." || name == ".." {
		return "", fmt.Errorf("kernel name %q must be a plain directory name", name)
	}
	argv := []string{"kernel", "--connection-file", "{connection_file}"}
	if opts.MaxMemory != "" {
		if _, err := ParseMemory(opts.MaxMemory); err != nil {
			return "", fmt.Errorf("--max-memory: %w", err)
		}
		argv = append(argv, "--max-memory", opts.MaxMemory)
	}
	exe := opts.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return "", fmt.Errorf("finding the dpsflow executable: %w", err)
		}
	}
	exe, err := filepath.Abs(exe)
	if err != nil {
		return "", err
	}
	var base string
	if opts.Prefix != "" {
		base = filepath.Join(opts.Prefix, "share", "jupyter")
	} else if base, err = UserDataDir(); err != nil {
		return "", err
	}
	dir := filepath.Join(base, "kernels", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	spec := KernelSpec{
		Argv:          append([]string{exe}, argv...),
		DisplayName:   "Go (dpsflow)",
		Language:      "go",
		InterruptMode: "message",
		Metadata:      map[string]any{"dpsflow_version": Version},
	}
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return "", err
	}
	if err := atomicfile.Write(filepath.Join(dir, "kernel.json"), append(data, '\n'), 0o644); err != nil {
		return "", err
	}
	for _, size := range []int{32, 64} {
		if err := atomicfile.Write(filepath.Join(dir, fmt.Sprintf("logo-%dx%d.png", size, size)), logo(size), 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// logo draws the kernel's icon: a Go-blue disc with a white ring, a stylised node.
func logo(size int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	blue := color.NRGBA{0x00, 0xad, 0xd8, 0xff}
	c := float64(size-1) / 2
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			dx, dy := float64(x)-c, float64(y)-c
			r2 := (dx*dx + dy*dy) / (c * c)
			switch {
			case r2 <= 0.16:
				img.Set(x, y, color.White)
			case r2 <= 0.3:
				img.Set(x, y, blue)
			case r2 <= 0.45:
				img.Set(x, y, color.White)
			case r2 <= 1:
				img.Set(x, y, blue)
			}
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}
