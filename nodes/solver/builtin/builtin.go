// Package builtin imports every solver package of dpsflow, so that they register with
// nodes/solver. Import it (for its side effect) wherever solvers are looked up by name:
//
//	import _ "github.com/dpsflow/dpsflow/nodes/solver/builtin"
package builtin

import (
	_ "github.com/dpsflow/dpsflow/nodes/solver/admm"    // admm-tv, pnp-admm
	_ "github.com/dpsflow/dpsflow/nodes/solver/daps"    // daps
	_ "github.com/dpsflow/dpsflow/nodes/solver/ddrm"    // ddrm
	_ "github.com/dpsflow/dpsflow/nodes/solver/diffpir" // diffpir
	_ "github.com/dpsflow/dpsflow/nodes/solver/dps"     // dps, dps+, mcg, projection, vanilla
	_ "github.com/dpsflow/dpsflow/nodes/solver/linear"  // pinv, wiener
	_ "github.com/dpsflow/dpsflow/nodes/solver/phase"   // er, hio, oss
	_ "github.com/dpsflow/dpsflow/nodes/solver/pigdm"   // pigdm
	_ "github.com/dpsflow/dpsflow/nodes/solver/reddiff" // reddiff
)
