// Package builtin imports every solver package of dpsflow, so that they register with
// nodes/solver. Import it (for its side effect) wherever solvers are looked up by name:
//
//	import _ "github.com/dpsflow/dpsflow/nodes/solver/builtin"
package builtin

import (
	_ "github.com/dpsflow/dpsflow/nodes/solver/dps" // dps, dps+, mcg, projection, vanilla
)
