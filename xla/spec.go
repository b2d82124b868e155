package xla

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/backends"
)

// DefaultSpec is the backend used when none is given.
const DefaultSpec = "embedded"

// EnvSpec names the environment variable that overrides DefaultSpec.
const EnvSpec = "DPSFLOW_BACKEND"

// Kind says which family a Spec belongs to.
type Kind string

const (
	// KindEmbedded is the pure-Go backend of this package.
	KindEmbedded Kind = "embedded"
	// KindXLA is an XLA PJRT plugin.
	KindXLA Kind = "xla"
)

// Spec is a parsed backend spec.
type Spec struct {
	Kind Kind
	// Plugin is the plugin name ("cuda", "cpu", …) or an absolute plugin path; only for KindXLA.
	Plugin string
	// Options are the comma-separated words after the plugin (e.g. "auto_install",
	// "shared_buffers"); for embedded they are passed to GoMLX's SimpleGo ("parallelism=2").
	Options []string
	// Raw is the spec as given.
	Raw string
}

// SpecError is returned for a spec that cannot be used; its message says what was tried
// and how to fix it. The CLI exits with code 2 on it.
type SpecError struct {
	Spec string
	Msg  string
}

func (e *SpecError) Error() string { return fmt.Sprintf("backend %q: %s", e.Spec, e.Msg) }

// ParseSpec parses "embedded", "go", "xla:<name>" or "xla:<absolute path>", each optionally
// followed by ",option". The empty spec means $DPSFLOW_BACKEND, else DefaultSpec.
func ParseSpec(spec string) (Spec, error) {
	raw := spec
	if strings.TrimSpace(spec) == "" {
		spec = os.Getenv(EnvSpec)
		if spec == "" {
			spec = DefaultSpec
		}
		raw = spec
	}
	name, rest, hasColon := strings.Cut(spec, ":")
	// "embedded,parallelism=2" has no colon: options follow the name directly.
	if !hasColon {
		name, rest, _ = strings.Cut(spec, ",")
		rest = "," + rest
	}
	parts := strings.Split(rest, ",")
	var opts []string
	for _, p := range parts[1:] {
		if p = strings.TrimSpace(p); p != "" {
			opts = append(opts, p)
		}
	}
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "embedded", "go", "simplego":
		if hasColon && strings.TrimSpace(parts[0]) != "" {
			return Spec{}, &SpecError{raw, fmt.Sprintf("the embedded backend takes no plugin (got %q); use \"embedded\" or \"embedded,parallelism=N\"", parts[0])}
		}
		return Spec{Kind: KindEmbedded, Options: opts, Raw: raw}, nil
	case "xla", "pjrt", "stablehlo":
		plugin := strings.TrimSpace(parts[0])
		if plugin == "" {
			return Spec{}, &SpecError{raw, "no plugin given; use xla:cuda, xla:cpu, xla:tpu or xla:/absolute/path/to/plugin.so"}
		}
		if strings.ContainsRune(plugin, os.PathSeparator) && !filepath.IsAbs(plugin) {
			return Spec{}, &SpecError{raw, fmt.Sprintf("plugin path %q is not absolute; give the absolute path of the PJRT plugin .so", plugin)}
		}
		return Spec{Kind: KindXLA, Plugin: plugin, Options: opts, Raw: raw}, nil
	default:
		return Spec{}, &SpecError{raw, fmt.Sprintf("unknown backend %q; valid specs are \"embedded\" (default, pure Go), \"xla:<plugin name>\" (e.g. xla:cuda) or \"xla:/absolute/path/to/pjrt_plugin.so\"", name)}
	}
}

// New returns a new GoMLX backend for spec (see the package documentation for the syntax);
// the caller owns it and should Finalize it when done. Code that may run in several places
// at once (DAG nodes) should use Shared instead. Errors about the spec itself are *SpecError.
func New(spec string) (backends.Backend, error) {
	s, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	return newFromSpec(s)
}

// newFromSpec creates the backend of a parsed spec.
func newFromSpec(s Spec) (backends.Backend, error) {
	switch s.Kind {
	case KindEmbedded:
		return NewEmbedded(strings.Join(s.Options, ","))
	default:
		return newPJRT(s)
	}
}
