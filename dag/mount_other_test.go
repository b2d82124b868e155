//go:build !linux

package dag

import "errors"

func mountTmpfs(dir, opts string) error { return errors.New("tmpfs mounts are only tried on Linux") }

func unmount(dir string) error { return nil }
