package schedule_test

import (
	"fmt"

	"github.com/dpsflow/dpsflow/nodes/schedule"
)

// Sampling in 10 steps instead of 1000: the network still sees base step indices, and ᾱ at
// those steps is unchanged.
func ExampleSchedule_Respace() {
	base := schedule.Default()
	s, err := base.Respace(10)
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Timesteps)
	fmt.Printf("ᾱ at step 999: %.6g (base %.6g)\n", s.AlphaBars[9], base.AlphaBars[999])
	fmt.Printf("β of the last respaced step: %.4f\n", s.Betas[9])
	// Output:
	// [0 111 222 333 444 555 666 777 888 999]
	// ᾱ at step 999: 4.03583e-05 (base 4.03583e-05)
	// β of the last respaced step: 0.8798
}
