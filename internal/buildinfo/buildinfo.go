// Package buildinfo says which dpsflow this is, for `dpsflow version`, run records and
// sweep plans.
package buildinfo

import "runtime/debug"

// Version is the module version, or "dev-" and the VCS revision for a development build
// ("dev" when the build has neither).
func Version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "dev-" + s.Value[:12]
		}
	}
	return "dev"
}
