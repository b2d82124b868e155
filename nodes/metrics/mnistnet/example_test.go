package mnistnet_test

import (
	"fmt"

	"github.com/dpsflow/dpsflow/nodes/metrics/mnistnet"
	"github.com/dpsflow/dpsflow/nodes/mnist"
	"github.com/dpsflow/dpsflow/xla"
)

// The shipped classifier reads the first test digits (a 7, a 2, a 1, a 0).
func Example() {
	test, err := mnist.LoadSplit("", "test") // the MNIST files of the GoMNIST module
	if err != nil {
		fmt.Println(err)
		return
	}
	net, err := mnistnet.Load()
	if err != nil {
		fmt.Println(err)
		return
	}
	backend, release, err := xla.Shared("")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer release()
	features, classes, err := net.Run(backend, test.Images[:4*32*32], 4)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(classes, test.Labels[:4], len(features[0]))
	// Output: [7 2 1 0] [7 2 1 0] 128
}
