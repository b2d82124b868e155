package xla

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	_ "unsafe" // for go:linkname

	gomlxxla "github.com/gomlx/gomlx/backends/xla"
)

// gomlxAutoInstall is GoMLX's private "download plugins on New/GetAvailablePlugins" flag,
// read here to prove newPJRT turned it off.
//
//go:linkname gomlxAutoInstall github.com/gomlx/gomlx/backends/xla.autoInstall
var gomlxAutoInstall bool

// buildSO compiles C source into a shared object named name in a new temp dir.
func buildSO(t *testing.T, name, src string) string {
	t.Helper()
	dir := t.TempDir()
	c := filepath.Join(dir, "src.c")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	so := filepath.Join(dir, name)
	if out, err := exec.Command("gcc", "-shared", "-fPIC", "-o", so, c).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return so
}

const (
	nullAPISrc = "void *GetPjrtApi(void) { return 0; }\n"
	noAPISrc   = "int not_pjrt(void) { return 1; }\n"
)

// isolatePJRT makes plugin search see only what the test creates: no environment
// overrides, no go-xla plugins on this machine, Python site-packages under a temp dir
// (returned), and an installer that fails the test if called.
func isolatePJRT(t *testing.T) (pyPrefix string) {
	t.Helper()
	pyPrefix = t.TempDir()
	t.Setenv(EnvPJRTSearch, "")
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", t.TempDir())
	t.Setenv(gomlxxla.NoAutoInstallEnv, "")
	os.Unsetenv(gomlxxla.NoAutoInstallEnv) // t.Setenv restores it afterwards.
	oldInstall, oldGoxla, oldSites := autoInstall, goxlaPlugins, pythonSitePatterns
	t.Cleanup(func() { autoInstall, goxlaPlugins, pythonSitePatterns = oldInstall, oldGoxla, oldSites })
	autoInstall = func() error { t.Error("auto-install called without auto_install"); return errors.New("no network") }
	goxlaPlugins = func() map[string]string { return map[string]string{} }
	pythonSitePatterns = func() []string { return []string{filepath.Join(pyPrefix, "lib/python3*/site-packages")} }
	return pyPrefix
}

// fakeJAX installs so as JAX's CUDA plugin for the given versions under prefix.
func fakeJAX(t *testing.T, prefix, so string, versions ...string) {
	t.Helper()
	data, err := os.ReadFile(so)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		dir := filepath.Join(prefix, "lib/python3.12/site-packages/jax_plugins/xla_cuda"+v)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "xla_cuda_plugin.so"), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// newSpecErr calls New and requires a *SpecError whose message contains every want.
func newSpecErr(t *testing.T, spec string, want ...string) *SpecError {
	t.Helper()
	b, err := New(spec)
	if err == nil {
		b.Finalize()
		t.Fatalf("New(%q) succeeded, want an error", spec)
	}
	var se *SpecError
	if !errors.As(err, &se) {
		t.Fatalf("New(%q) error %T %v, want *SpecError", spec, err, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("New(%q) error lacks %q:\n%v", spec, w, err)
		}
	}
	return se
}

func TestPJRTUnknownPluginListsSearched(t *testing.T) {
	py := isolatePJRT(t)
	extra := t.TempDir()
	t.Setenv(EnvPJRTSearch, extra)
	gomlxAutoInstall = true
	newSpecErr(t, "xla:nosuch",
		`PJRT plugin "nosuch" not found`,
		filepath.Join(extra, "pjrt_c_api_nosuch_plugin.so"),
		os.Getenv("PJRT_PLUGIN_LIBRARY_PATH"),
		filepath.Join(py, "lib/python3*/site-packages/jax_plugins/xla_nosuch*/xla_nosuch_plugin.so"),
		"PJRT_PLUGIN_LIBRARY_PATH", "absolute path", `",auto_install"`)
	if gomlxAutoInstall {
		t.Error("GoMLX auto-install still enabled after New without auto_install")
	}
}

func TestPJRTPluginFileChecks(t *testing.T) {
	isolatePJRT(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.so")
	newSpecErr(t, "xla:"+missing, missing, "does not exist")
	newSpecErr(t, "xla:"+dir, dir, "is a directory")

	text := filepath.Join(dir, "text.so")
	if err := os.WriteFile(text, []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	newSpecErr(t, "xla:"+text, text, "not an ELF shared object")

	noAPI := buildSO(t, "libnotpjrt.so", noAPISrc)
	newSpecErr(t, "xla:"+noAPI, noAPI, "is not a PJRT plugin: it does not export GetPjrtApi", "xla_cuda_plugin.so")
}

func TestPJRTNullAPIIsAnError(t *testing.T) {
	isolatePJRT(t)
	// go-xla returns (nil, nil) for this plugin and GoMLX would then panic on the nil plugin.
	so := buildSO(t, "pjrt_c_api_null_plugin.so", nullAPISrc)
	newSpecErr(t, "xla:"+so, so, "GetPjrtApi returned NULL")
}

func TestFindPluginPrefersHighestJAXVersion(t *testing.T) {
	py := isolatePJRT(t)
	so := buildSO(t, "x.so", nullAPISrc)
	fakeJAX(t, py, so, "12", "13", "")
	// A non-plugin in an even higher version is skipped, not chosen.
	bad := filepath.Join(py, "lib/python3.12/site-packages/jax_plugins/xla_cuda14")
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, "xla_cuda_plugin.so"), []byte("junk"), 0o644)

	path, searched, err := FindPlugin("cuda")
	want := filepath.Join(py, "lib/python3.12/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so")
	if err != nil || path != want {
		t.Fatalf("FindPlugin(cuda) = %q, %v; want %q", path, err, want)
	}
	if s := strings.Join(searched, "\n"); !strings.Contains(s, "skipped: "+filepath.Join(bad, "xla_cuda_plugin.so")) {
		t.Errorf("searched does not report the skipped xla_cuda14 file:\n%s", s)
	}

	// By name, New resolves the same file and reports the load failure with its path.
	newSpecErr(t, "xla:cuda", want, "GetPjrtApi returned NULL")
}

func TestFindPluginSearchEnvComesFirst(t *testing.T) {
	py := isolatePJRT(t)
	so := buildSO(t, "pjrt_c_api_cuda_plugin.so", nullAPISrc)
	fakeJAX(t, py, so, "13")
	t.Setenv(EnvPJRTSearch, "/nonexistent:"+filepath.Dir(so))
	path, _, err := FindPlugin("cuda")
	if err != nil || path != so {
		t.Fatalf("FindPlugin(cuda) = %q, %v; want %q from %s", path, err, so, EnvPJRTSearch)
	}
}

func TestFindPluginSurvivesGoXLAPanic(t *testing.T) {
	isolatePJRT(t)
	so := buildSO(t, "pjrt_c_api_foo_plugin.so", nullAPISrc)
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", filepath.Dir(so))
	// What go-xla v0.1.4 does when a file named like a plugin lacks GetPjrtApi.
	goxlaPlugins = func() map[string]string { var h interface{ Close() error }; h.Close(); return nil }
	path, searched, err := FindPlugin("foo")
	if err != nil || path != so {
		t.Fatalf("FindPlugin(foo) = %q, %v; want %q\n%s", path, err, so, strings.Join(searched, "\n"))
	}
}

func TestPJRTAutoInstall(t *testing.T) {
	isolatePJRT(t)
	so := buildSO(t, "x.so", nullAPISrc)
	installDir := t.TempDir()
	t.Setenv(EnvPJRTSearch, installDir)
	installed := 0
	autoInstall = func() error {
		installed++
		data, _ := os.ReadFile(so)
		return os.WriteFile(filepath.Join(installDir, "pjrt_c_api_cpu_plugin.so"), data, 0o755)
	}
	// Refused when the environment forbids downloads, before any search or install.
	t.Setenv(gomlxxla.NoAutoInstallEnv, "1")
	newSpecErr(t, "xla:cpu,auto_install", "GOMLX_NO_AUTO_INSTALL")
	if installed != 0 {
		t.Fatal("installer ran although GOMLX_NO_AUTO_INSTALL is set")
	}
	os.Unsetenv(gomlxxla.NoAutoInstallEnv)
	// Otherwise the installer runs once, the plugin is found, and its (fake) load fails.
	newSpecErr(t, "xla:cpu,auto_install", filepath.Join(installDir, "pjrt_c_api_cpu_plugin.so"), "GetPjrtApi returned NULL")
	if installed != 1 {
		t.Fatalf("installer ran %d times, want 1", installed)
	}
	if gomlxAutoInstall {
		t.Error("GoMLX's own auto-install left enabled")
	}
}

func TestPJRTRejectsUnknownOption(t *testing.T) {
	isolatePJRT(t)
	newSpecErr(t, "xla:cpu,bogus", `unknown option "bogus"`, "shared_buffers")
}

func TestPJRTDescribeBackend(t *testing.T) {
	b, err := New("embedded")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	info := DescribeBackend(b)
	if info.Name != EmbeddedName || info.Description == "" || len(info.Devices) != b.NumDevices() || len(info.Devices) == 0 {
		t.Errorf("DescribeBackend = %+v", info)
	}
	if !strings.HasPrefix(info.GoMLXVersion, "v0.26") {
		t.Errorf("GoMLXVersion = %q, want v0.26.x", info.GoMLXVersion)
	}
	if info.PluginPath != "" || info.PJRTVersion != "" {
		t.Errorf("embedded backend reports a plugin: %+v", info)
	}
	js, _ := json.Marshal(info)
	for _, k := range []string{`"name"`, `"devices"`, `"gomlx_version"`} {
		if !strings.Contains(string(js), k) {
			t.Errorf("JSON %s lacks %s", js, k)
		}
	}
}
