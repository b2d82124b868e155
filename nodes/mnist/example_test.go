package mnist_test

import (
	"fmt"

	"github.com/dpsflow/dpsflow/nodes/mnist"
)

func Example() {
	_, test, err := mnist.Load("") // "" finds the GoMNIST module in the module cache
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(test.N, test.Labels[0], len(test.Image(0)), test.Image(0)[0])
	// Output: 10000 7 1024 -1
}
