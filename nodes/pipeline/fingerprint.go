package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// The kinds that read files (prior, images) are cached by a digest of what they read, so
// an edited checkpoint or image reruns them and what depends on them, and nothing else.

func fingerprintPrior(p map[string]any) (string, error) {
	if b, _ := p["builtin"].(string); b != "" {
		return "builtin:" + b, nil // part of the binary: its version is the binary's
	}
	cfg, _ := p["model_config"].(string)
	ckpt, _ := p["checkpoint"].(string)
	return fileDigests(cfg, ckpt)
}

func fingerprintImages(p map[string]any) (string, error) {
	path, _ := p["path"].(string)
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return fileDigests(path)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return "", err
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() {
			files = append(files, filepath.Join(path, e.Name()))
		}
	}
	slices.Sort(files)
	return fileDigests(files...)
}

// fileDigests is a digest of the files' names and contents.
func fileDigests(paths ...string) (string, error) {
	h := sha256.New()
	for _, p := range paths {
		d, err := fileDigest(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %s\n", filepath.Base(p), d)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

var digestMemo sync.Map // "path size mtime" → sha256: big checkpoints are hashed once per process

func fileDigest(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	memoKey := fmt.Sprintf("%s %d %d", path, fi.Size(), fi.ModTime().UnixNano())
	if d, ok := digestMemo.Load(memoKey); ok {
		return d.(string), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	d := hash(f)
	digestMemo.Store(memoKey, d)
	return d, nil
}
