// Package mnistnet is a small convolutional MNIST classifier that dpsflow trains itself and
// ships (models/mnistnet), used by the evaluation for two things: the class accuracy of
// reconstructions (is the recovered digit the right digit?) and Fréchet / kernel inception
// distances computed on its penultimate features, the MNIST stand-in for Inception features
// (the FD/KID formulas live elsewhere; this package gives the features).
//
// Input: float32 NCHW [n, 1, 32, 32] in [-1, 1] — the layout of nodes/mnist, 28×28 digits
// centred in a 2-pixel border of −1. The network (155 786 float32 weights, 0.6 MB):
//
//	conv1: conv 3×3, 1→16, padding 1, + bias, ReLU, max-pool 2×2   → [16, 16, 16]
//	conv2: conv 3×3, 16→32, padding 1, + bias, ReLU, max-pool 2×2  → [32, 8, 8]
//	conv3: conv 3×3, 32→64, padding 1, + bias, ReLU, max-pool 2×2  → [64, 4, 4]
//	flatten (PyTorch's order: c·16 + h·4 + w)                       → [1024]
//	fc1:   1024→128, + bias, ReLU                                   → the features, FeatureDim = 128
//	fc2:   128→10, + bias                                           → the logits; the class is their argmax
//
// The convolutions are cross-correlations as in PyTorch's Conv2d. The checkpoint is
// safetensors, float32, under PyTorch state-dict names and layouts: conv{1,2,3}.weight
// [out, in, 3, 3], conv{1,2,3}.bias [out], fc{1,2}.weight [out, in], fc{1,2}.bias [out]
// (see Shapes); a torch.nn module with those attributes loads it with load_state_dict, as
// testdata/mnistnet/reference.py does. No dropout or normalisation layers, so inference is
// the formula above with nothing in train mode.
//
// Training (Train, `dpsflow train-classifier`): softmax cross-entropy, Adam (β = 0.9, 0.999,
// ε = 1e-8) with a linear warmup to the peak rate and a cosine decay to 0, He-uniform
// initial weights and zero biases, epochs as seeded permutations of the 60 000 training
// images, each image shifted by a random (dx, dy) ∈ [−Shift, Shift]² with −1 filled in
// (reconstructions are not perfectly centred). Every random draw comes from ChaCha8 keyed
// by a hash of the seed, so a recipe on one backend gives byte-identical weights. The
// shipped recipe and its result (steps, final training loss, test accuracy, wall time,
// backend, Go version) are in models/mnistnet/train.json.
package mnistnet
