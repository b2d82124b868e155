package xla

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gomlx/go-xla/pkg/pjrt"
	"github.com/gomlx/gomlx/backends"
	gomlxxla "github.com/gomlx/gomlx/backends/xla"
)

// EnvPJRTSearch names an environment variable holding colon-separated extra directories
// searched for PJRT plugins before anything else. Each directory may hold the plugin file
// itself (pjrt_c_api_<name>_plugin.so, pjrt_plugin_<name>.so, pjrt-plugin-<name>.so or
// xla_<name>_plugin.so), be a Python site-packages directory (jax_plugins/xla_<name>*/…) or
// a Python prefix such as a virtualenv (lib/python3*/site-packages/jax_plugins/…).
const EnvPJRTSearch = "DPSFLOW_PJRT_SEARCH"

// Test seams: tests replace these to run without touching the network or the machine's
// own plugins.
var (
	// autoInstall downloads GoMLX's default plugins into ~/.local/lib/go-xla.
	autoInstall = gomlxxla.AutoInstall
	// goxlaPlugins lists the plugins go-xla finds in PJRT_PLUGIN_LIBRARY_PATH or its
	// standard places, by name.
	goxlaPlugins = pjrt.AvailablePlugins
	// pythonSitePatterns returns glob patterns of Python site-packages directories, in the
	// order they are searched for JAX plugins.
	pythonSitePatterns = defaultPythonSitePatterns
)

var (
	// pjrtMu serialises our calls into go-xla: its plugin search reads its cache of loaded
	// plugins without taking its own lock.
	pjrtMu sync.Mutex
	// loadedPJRT remembers, per backend made by newPJRT, where its plugin came from, because
	// GoMLX's backend keeps its *pjrt.Plugin private. Guarded by pjrtMu.
	loadedPJRT = map[*gomlxxla.Backend]BackendInfo{}
)

// gomlxOptions are the plugin options GoMLX v0.26's XLA backend understands; it only logs
// the others, so we refuse them instead.
var gomlxOptions = []string{"shared_buffers", "noshared_buffers", "tf32"}

// newPJRT loads the PJRT plugin of s (KindXLA) and returns a GoMLX XLA backend on it.
func newPJRT(s Spec) (b backends.Backend, err error) {
	// GoMLX downloads plugins by default whenever it resolves a plugin name. We always hand
	// it an absolute path (which skips that code), but turn it off globally as well so
	// nothing else in the process triggers a download behind the user's back.
	gomlxxla.EnableAutoInstall(false)
	install := slices.Contains(s.Options, "auto_install")
	opts := slices.DeleteFunc(slices.Clone(s.Options), func(o string) bool { return o == "auto_install" })
	for _, o := range opts {
		if !slices.Contains(gomlxOptions, o) {
			return nil, &SpecError{s.Raw, fmt.Sprintf("unknown option %q; valid options for xla are auto_install, %s", o, strings.Join(gomlxOptions, ", "))}
		}
	}
	if _, set := os.LookupEnv(gomlxxla.NoAutoInstallEnv); install && set {
		return nil, &SpecError{s.Raw, fmt.Sprintf("auto_install was asked for but %s is set, which forbids downloads; unset it or install the plugin yourself", gomlxxla.NoAutoInstallEnv)}
	}

	path := s.Plugin
	if !filepath.IsAbs(path) {
		p, searched, err := FindPlugin(path)
		if err != nil && install {
			if ierr := autoInstall(); ierr != nil {
				return nil, &SpecError{s.Raw, fmt.Sprintf("PJRT plugin %q not found and GoMLX's auto-install failed: %v", path, ierr)}
			}
			p, searched, err = FindPlugin(path)
		}
		if err != nil {
			return nil, &SpecError{s.Raw, notFoundMsg(path, searched, install)}
		}
		// GoMLX enables shared buffers (no host→device copy) only for a plugin *named*
		// "cpu"; we load by path, so say it explicitly.
		if path == "cpu" && !slices.Contains(opts, "noshared_buffers") && !slices.Contains(opts, "shared_buffers") {
			opts = append(opts, "shared_buffers")
		}
		path = p
	}
	if err := checkPluginFile(path); err != nil {
		return nil, &SpecError{s.Raw, err.Error()}
	}

	pjrtMu.Lock()
	defer pjrtMu.Unlock()
	// A Go panic inside go-xla or GoMLX becomes an error; a crash inside the plugin's C code
	// cannot be recovered.
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, &SpecError{s.Raw, fmt.Sprintf("loading PJRT plugin %s panicked: %v", path, r)}
		}
	}()
	// Load through go-xla first: when GetPjrtApi returns NULL, go-xla v0.1.4 returns a nil
	// plugin with a nil error, and GoMLX then dereferences it.
	plugin, err := pjrt.GetPlugin(path)
	if err != nil {
		return nil, &SpecError{s.Raw, fmt.Sprintf("cannot load PJRT plugin %s: %v", path, err)}
	}
	if plugin == nil {
		return nil, &SpecError{s.Raw, fmt.Sprintf("cannot load PJRT plugin %s: its GetPjrtApi returned NULL (a broken or incompatible plugin build)", path)}
	}
	xb, err := gomlxxla.NewWithOptions(strings.Join(append([]string{path}, opts...), ","), nil)
	if err != nil {
		return nil, &SpecError{s.Raw, fmt.Sprintf("PJRT plugin %s loaded but GoMLX could not start it: %v", path, err)}
	}
	major, minor := plugin.Version()
	loadedPJRT[xb] = BackendInfo{PluginPath: path, PJRTVersion: fmt.Sprintf("%d.%d", major, minor)}
	return xb, nil
}

// notFoundMsg explains, in its first line, what failed and how to fix it; the places
// searched follow, one a line.
func notFoundMsg(name string, searched []string, installed bool) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "PJRT plugin %q not found in %d places", name, len(searched))
	if installed {
		sb.WriteString(" even after GoMLX's auto-install")
	}
	fmt.Fprintf(&sb, "; to fix: set %s (or %s) to the directory holding the plugin, pass its absolute path (xla:/path/to/plugin.so), "+
		"install JAX's plugin (pip install -U \"jax[cuda13]\" for cuda) or GoMLX's (go run github.com/gomlx/go-xla/cmd/pjrt_installer@latest)",
		pjrt.PJRTPluginPathsEnv, EnvPJRTSearch)
	if !installed {
		sb.WriteString(", or add \",auto_install\" to the spec to let GoMLX download it")
	}
	sb.WriteString(". Searched:")
	for _, s := range searched {
		fmt.Fprintf(&sb, "\n  %s", s)
	}
	return sb.String()
}

// FindPlugin returns the absolute path of the PJRT plugin called name ("cuda", "cpu", "tpu",
// …) and the places searched, in order: the directories of $DPSFLOW_PJRT_SEARCH; go-xla's
// places ($PJRT_PLUGIN_LIBRARY_PATH, else ~/.local/lib/go-xla, /usr/local/lib/go-xla, the
// library path); JAX installations in Python site-packages
// (jax_plugins/xla_<name>*/xla_<name>_plugin.so, the highest version first). Files that are
// not PJRT plugins are skipped and reported in searched. err is a *SpecError when nothing is
// found.
func FindPlugin(name string) (path string, searched []string, err error) {
	// try returns the first valid plugin matching patterns, noting the files it skips.
	try := func(patterns ...string) string {
		for _, pat := range patterns {
			matches, _ := filepath.Glob(pat)
			sortByVersion(matches, name)
			for _, m := range matches {
				if err := checkPluginFile(m); err != nil {
					searched = append(searched, "  skipped: "+err.Error())
					continue
				}
				if abs, err := filepath.Abs(m); err == nil {
					return abs
				}
			}
		}
		return ""
	}
	jax := filepath.Join("jax_plugins", "xla_"+name+"*", "xla_"+name+"_plugin.so")
	goxlaFiles := func(dir string) []string {
		return []string{
			filepath.Join(dir, "pjrt_c_api_"+name+"_plugin.so"),
			filepath.Join(dir, "pjrt_plugin_"+name+".so"),
			filepath.Join(dir, "pjrt-plugin-"+name+".so"),
		}
	}

	for _, dir := range filepath.SplitList(os.Getenv(EnvPJRTSearch)) {
		if dir == "" {
			continue
		}
		pats := append(goxlaFiles(dir), filepath.Join(dir, "xla_"+name+"_plugin.so"),
			filepath.Join(dir, jax), filepath.Join(dir, "lib", "python3*", "site-packages", jax))
		searched = append(searched, pats...)
		if p := try(pats...); p != "" {
			return p, searched, nil
		}
	}

	dirs := goxlaSearchDirs()
	for _, dir := range dirs {
		searched = append(searched, filepath.Join(dir, fmt.Sprintf("{pjrt_c_api_%s_plugin,pjrt_plugin_%s,pjrt-plugin-%s}.so", name, name, name)))
	}
	if strings.Contains(name, "cuda") || strings.Contains(name, "nvidia") {
		searched = append(searched, "  (go-xla ignores cuda plugins there when neither /dev/nvidia* nor nvidia-smi exists)")
	}
	found, panicked := safeGoxlaPlugins()
	if p := found[name]; p != "" {
		return p, searched, nil
	}
	if panicked {
		// go-xla v0.1.4 panics when a file there is named like a plugin but does not load
		// (it closes a nil handle), so search those directories ourselves.
		searched = append(searched, "  (go-xla's search crashed on a broken plugin file; searched again without it)")
		var pats []string
		for _, dir := range dirs {
			pats = append(pats, goxlaFiles(dir)...)
		}
		if p := try(pats...); p != "" {
			return p, searched, nil
		}
	}

	for _, site := range pythonSitePatterns() {
		pats := []string{filepath.Join(site, jax)}
		if name == "tpu" { // JAX's TPU plugin ships as the libtpu package.
			pats = append(pats, filepath.Join(site, "libtpu", "libtpu.so"))
		}
		searched = append(searched, pats...)
		if p := try(pats...); p != "" {
			return p, searched, nil
		}
	}
	return "", searched, &SpecError{"xla:" + name, notFoundMsg(name, searched, false)}
}

// safeGoxlaPlugins calls goxlaPlugins, reporting a panic instead of crashing.
func safeGoxlaPlugins() (found map[string]string, panicked bool) {
	pjrtMu.Lock()
	defer pjrtMu.Unlock()
	defer func() {
		if recover() != nil {
			found, panicked = nil, true
		}
	}()
	return goxlaPlugins(), false
}

// sortByVersion orders JAX plugin paths such as …/xla_cuda12/… and …/xla_cuda13/… with the
// highest version first; paths without a version come last.
func sortByVersion(paths []string, name string) {
	version := func(p string) int {
		v, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(filepath.Dir(p)), "xla_"+name))
		if err != nil {
			return -1
		}
		return v
	}
	slices.SortStableFunc(paths, func(a, b string) int { return version(b) - version(a) })
}

// goxlaSearchDirs mirrors where go-xla v0.1.4 (pkg/pjrt/dynamiclib_posix.go) looks for
// plugins on Linux, so that errors can list them: go-xla keeps its list private.
func goxlaSearchDirs() []string {
	if v, ok := os.LookupEnv(pjrt.PJRTPluginPathsEnv); ok {
		return slices.DeleteFunc(filepath.SplitList(v), func(d string) bool { return d == "" })
	}
	var dirs []string
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".local/lib/go-xla"), filepath.Join(home, ".local/lib/go-xla/nvidia"),
			filepath.Join(home, ".local/lib/gomlx/pjrt"))
	}
	dirs = append(dirs, "/usr/local/lib/go-xla", "/usr/local/lib/go-xla/nvidia", "/usr/local/lib/gomlx/pjrt")
	for _, d := range filepath.SplitList(os.Getenv("LD_LIBRARY_PATH")) {
		if filepath.IsAbs(d) {
			dirs = append(dirs, d)
		}
	}
	return ldSoConfDirs(dirs, "/etc/ld.so.conf", 0)
}

// ldSoConfDirs appends the directories listed in an ld.so.conf file, following includes.
func ldSoConfDirs(dirs []string, file string, depth int) []string {
	data, err := os.ReadFile(file)
	if err != nil || depth > 8 { // depth: guards against include loops.
		return dirs
	}
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if inc, ok := strings.CutPrefix(line, "include"); ok && strings.HasPrefix(inc, " ") {
			files, _ := filepath.Glob(strings.TrimSpace(inc))
			for _, f := range files {
				dirs = ldSoConfDirs(dirs, f, depth+1)
			}
		} else if line != "" {
			dirs = append(dirs, line)
		}
	}
	return dirs
}

// defaultPythonSitePatterns lists where Python packages (and so JAX's plugins) usually live.
func defaultPythonSitePatterns() []string {
	var pats []string
	for _, p := range filepath.SplitList(os.Getenv("PYTHONPATH")) {
		if p != "" {
			pats = append(pats, p)
		}
	}
	for _, env := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if v := os.Getenv(env); v != "" {
			pats = append(pats, filepath.Join(v, "lib/python3*/site-packages"))
		}
	}
	homes := []string{"/root"}
	if home, err := os.UserHomeDir(); err == nil && home != "/root" {
		homes = append([]string{home}, homes...)
	}
	for _, h := range homes {
		pats = append(pats, filepath.Join(h, ".local/lib/python3*/site-packages"))
	}
	for _, prefix := range []string{"/usr/lib", "/usr/local/lib"} {
		pats = append(pats, prefix+"/python3*/site-packages", prefix+"/python3*/dist-packages")
	}
	pats = append(pats, "/opt/conda/lib/python3*/site-packages", "/opt/conda/envs/*/lib/python3*/site-packages")
	for _, h := range homes {
		pats = append(pats, filepath.Join(h, ".pyenv/versions/*/lib/python3*/site-packages"))
	}
	return pats
}

// checkPluginFile says why path is not a loadable PJRT plugin, before dlopen gets a chance to
// fail with a less helpful message (or to run a random library's initialisers).
func checkPluginFile(path string) error {
	const example = "…/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so or ~/.local/lib/go-xla/pjrt_c_api_cpu_plugin.so"
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("PJRT plugin file %s does not exist; pass the absolute path of a plugin such as %s, or a plugin name (xla:cuda)", path, example)
	case err != nil:
		return fmt.Errorf("cannot read PJRT plugin file %s: %v", path, err)
	case !info.Mode().IsRegular():
		return fmt.Errorf("%s is a %s, not a PJRT plugin file; pass the path of a file such as %s", path, fileKind(info), example)
	case runtime.GOOS != "linux": // Only Linux plugins are ELF.
		return nil
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not an ELF shared object (%v), so not a PJRT plugin; pass the path of a file such as %s", path, err, example)
	}
	defer f.Close()
	if f.Type != elf.ET_DYN {
		return fmt.Errorf("%s is an ELF file of type %s, not a shared object, so not a PJRT plugin; pass the path of a file such as %s", path, f.Type, example)
	}
	syms, _ := f.DynamicSymbols()
	for _, s := range syms {
		if s.Name == pjrt.GetPJRTApiFunctionName && s.Section != elf.SHN_UNDEF {
			return nil
		}
	}
	return fmt.Errorf("%s is not a PJRT plugin: it does not export %s; pass the path of a file such as %s", path, pjrt.GetPJRTApiFunctionName, example)
}

func fileKind(info os.FileInfo) string {
	if info.IsDir() {
		return "directory"
	}
	return "special file (" + info.Mode().Type().String() + ")"
}

// BackendInfo describes a backend for device reports (dpsflow doctor).
type BackendInfo struct {
	Name         string   `json:"name"`
	Description  string   `json:"description"`
	Devices      []string `json:"devices"`
	GoMLXVersion string   `json:"gomlx_version"`
	// PluginPath and PJRTVersion (the PJRT C API version, "major.minor") are set only for
	// XLA backends made by New.
	PluginPath  string `json:"plugin_path,omitempty"`
	PJRTVersion string `json:"pjrt_version,omitempty"`
}

// DescribeBackend reports b's name, devices, the GoMLX version and, for XLA backends made by
// New, the plugin file and its PJRT API version.
func DescribeBackend(b backends.Backend) BackendInfo {
	var info BackendInfo
	if xb, ok := b.(*gomlxxla.Backend); ok {
		pjrtMu.Lock()
		info = loadedPJRT[xb]
		pjrtMu.Unlock()
	}
	info.GoMLXVersion = gomlxVersion()
	if b == nil {
		return info
	}
	info.Name, info.Description = b.Name(), b.Description()
	info.Devices = []string{}
	for i := range b.NumDevices() {
		info.Devices = append(info.Devices, b.DeviceDescription(backends.DeviceNum(i)))
	}
	return info
}

// gomlxVersion is the GoMLX module version linked in; build info is missing in some builds
// (e.g. stripped test binaries), hence the pinned fallback.
func gomlxVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/gomlx/gomlx" {
				if m.Replace != nil && m.Replace.Version != "" {
					return m.Replace.Version
				}
				return m.Version
			}
		}
	}
	return "v0.26.0"
}
