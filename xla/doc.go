// Package xla turns a backend spec into a GoMLX backend that can differentiate everything
// DPS needs, and caches compiled executables.
//
// Specs:
//
//	embedded            GoMLX's pure-Go backend plus the ops its autodiff needs and lacks
//	                    (Pad, Reverse), a fixed and faster convolution (an implicit GEMM
//	                    on a SIMD micro-kernel chosen for the CPU), faster executors for the
//	                    ops a UNet spends its time in, and sequential op scheduling (no
//	                    deadlock). The default.
//	go                  an alias of embedded.
//	xla:<name>          an XLA PJRT plugin by name ("cuda", "cpu", "tpu"), searched in
//	                    PJRT_PLUGIN_LIBRARY_PATH, the standard GoMLX places and inside JAX
//	                    installations (jax_plugins/xla_<name>*/xla_<name>_plugin.so).
//	xla:<absolute path> an XLA PJRT plugin file.
//
// Nothing is downloaded unless the spec carries the ",auto_install" option; the
// GOMLX_NO_AUTO_INSTALL environment variable forbids even that.
//
// New creates a backend the caller owns; Shared hands out one reference-counted backend per
// spec per process, finalized when its last holder releases it (use it wherever several
// parts of a run, such as DAG nodes, need a backend). Compiled executables belong to
// their users (a sampler compiles its step once per shape).
package xla
