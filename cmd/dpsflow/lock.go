package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// lockFile is where a run folder's lock lives, beside its cache.
const lockFile = "lock"

// lockHolder is what the lock file records about the process that holds it.
type lockHolder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Command string    `json:"command"`
	Since   time.Time `json:"since"`
}

// lockedError says that another process holds a folder's lock; it exits with code 2.
type lockedError struct {
	dir    string
	holder lockHolder
}

func (e *lockedError) Error() string {
	h := e.holder
	if h.PID == 0 {
		return fmt.Sprintf("%s is in use by another dpsflow process (its lock %s could not be read); wait for it to finish", e.dir, filepath.Join(e.dir, lockFile))
	}
	return fmt.Sprintf("%s is in use by pid %d on %s since %s (%s); wait for it to finish, or stop it and run this again (it resumes)",
		e.dir, h.PID, h.Host, h.Since.Local().Format("2006-01-02 15:04:05"), h.Command)
}

// lockDir makes dir (and dir/.dpsflow) if needed and takes the folder's lock, so that two
// commands cannot work in one folder at once: the second is refused at once with a
// *lockedError naming the holder. A lock whose holder has died is taken over (the kernel
// drops a dead process's flock). release unlocks; the lock file stays.
func lockDir(dir string) (release func(), err error) {
	return lockState(filepath.Join(dir, ".dpsflow"))
}

// lockState takes the lock file in state (DIR/.dpsflow), made if needed.
func lockState(state string) (release func(), err error) {
	path := filepath.Join(state, lockFile)
	if err := os.MkdirAll(state, 0o755); err != nil {
		return nil, fmt.Errorf("cannot make the folder of the lock: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open the lock: %w", err)
	}
	if err := tryLock(f); err != nil {
		defer f.Close()
		if !errors.Is(err, errLocked) {
			return nil, fmt.Errorf("cannot lock %s: %w", path, err)
		}
		var h lockHolder
		if data, rerr := os.ReadFile(path); rerr == nil {
			_ = json.Unmarshal(data, &h)
		}
		dir := state
		if filepath.Base(state) == ".dpsflow" {
			dir = filepath.Dir(state)
		}
		return nil, &lockedError{dir: dir, holder: h}
	}
	host, _ := os.Hostname()
	data, _ := json.Marshal(lockHolder{PID: os.Getpid(), Host: host, Command: strings.Join(os.Args, " "), Since: time.Now()})
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt(append(data, '\n'), 0)
	}
	return func() {
		unlock(f)
		f.Close()
	}, nil
}

// errLocked is tryLock's answer when another process holds the lock.
var errLocked = errors.New("locked by another process")
