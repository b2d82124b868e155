package task

import (
	"embed"
	"fmt"
	"path"
	"slices"
	"strings"
)

// The presets are the task names of `dpsflow run --task`: reference-format configs sized
// for the shipped 32×32 MNIST prior.
//
//go:embed presets/*.yaml
var presetFS embed.FS

// Presets lists the preset task names, sorted.
func Presets() []string {
	entries, _ := presetFS.ReadDir("presets")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	slices.Sort(names)
	return names
}

// PresetYAML is the preset's config file as shipped.
func PresetYAML(name string) ([]byte, error) {
	data, err := presetFS.ReadFile(path.Join("presets", name+".yaml"))
	if err != nil {
		return nil, fmt.Errorf("task %q is not a preset (known: %s)", name, strings.Join(Presets(), ", "))
	}
	return data, nil
}

// Preset reads a preset task by name.
func Preset(name string) (*Config, error) {
	data, err := PresetYAML(name)
	if err != nil {
		return nil, err
	}
	return Parse(data, "preset "+name)
}
