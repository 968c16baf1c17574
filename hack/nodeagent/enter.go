package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// An image here is a file system root on this machine (see images.go).
// `nodeagent enter` runs a command in one, as a container runtime would: in
// a mount namespace of its own (nothing it mounts is seen outside), with the
// host's /proc, /dev and /sys, the pod's /etc/hosts (which `ip netns exec`
// put over the host's), a /tmp of its own, and the given host folders at
// the same paths (the pod's state folder: HOME, TMPDIR, logs, ConfigMap
// files), then chroot, then exec. Root "/" is the host: only the mounts are made.
//
//	nodeagent enter --root R [--share DIR]... [--mount SRC=DST]... [--workdir D] -- ARGV...

// enterArgs is how a process is started in root: the agent's own binary
// running `enter`, which execs argv there.
func enterArgs(self, root, workDir string, share []string, mounts map[string]string, argv []string) []string {
	out := []string{self, "enter", "--root=" + root}
	if workDir != "" {
		out = append(out, "--workdir="+workDir)
	}
	for _, s := range share {
		out = append(out, "--share="+s)
	}
	for _, dst := range sortedKeys(mounts) {
		out = append(out, "--mount="+mounts[dst]+"="+dst)
	}
	return append(append(out, "--"), argv...)
}

func enter(args []string) error {
	fs := flag.NewFlagSet("enter", flag.ContinueOnError)
	root := fs.String("root", "/", "The file system root to run in.")
	workDir := fs.String("workdir", "", "Working directory inside the root (default /).")
	var share, mounts stringList
	fs.Var(&share, "share", "A host folder seen at the same path inside the root (repeatable).")
	fs.Var(&mounts, "mount", "SRC=DST: the host path SRC seen at DST inside the root (repeatable).")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return fmt.Errorf("enter: no command")
	}
	// Namespaces, root and working directory belong to a thread: all of
	// them, and the exec, happen on this one.
	runtime.LockOSThread()
	if err := syscall.Unshare(syscall.CLONE_NEWNS); err != nil {
		return fmt.Errorf("enter: new mount namespace: %w", err)
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("enter: make mounts private: %w", err)
	}
	r := filepath.Clean(*root)
	if r != "/" {
		if _, err := os.Stat(filepath.Join(r, "usr")); err != nil {
			return fmt.Errorf("enter: %s is not a root file system: %w", r, err)
		}
		for _, d := range []string{"/proc", "/dev", "/sys"} {
			if err := bind(d, filepath.Join(r, d), true); err != nil {
				return err
			}
		}
		if err := syscall.Mount("tmpfs", filepath.Join(r, "tmp"), "tmpfs", 0, "mode=1777"); err != nil {
			return fmt.Errorf("enter: /tmp: %w", err)
		}
		for _, f := range []string{"/etc/hosts", "/etc/resolv.conf"} {
			if _, err := os.Stat(f); err != nil {
				continue
			}
			if err := bindIn(r, f, f, false); err != nil {
				return err
			}
		}
		for _, s := range share {
			if err := bindIn(r, s, s, true); err != nil {
				return err
			}
		}
	}
	for _, m := range mounts {
		src, dst, ok := strings.Cut(m, "=")
		if !ok || !filepath.IsAbs(dst) {
			return fmt.Errorf("enter: --mount %q: want SRC=/DST", m)
		}
		if err := bindIn(r, src, dst, false); err != nil {
			return err
		}
	}
	if err := syscall.Chroot(r); err != nil {
		return fmt.Errorf("enter: chroot %s: %w", r, err)
	}
	dir := *workDir
	if dir == "" {
		dir = "/"
	}
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("enter: working directory: %w", err)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		// As a container runtime says it: the command is not in the image.
		return fmt.Errorf("exec: %q: executable file not found in $PATH of image root %s", argv[0], r)
	}
	return syscall.Exec(path, argv, os.Environ())
}

// bindIn mounts src on dst as seen from inside root (see inRoot).
func bindIn(root, src, dst string, recursive bool) error {
	target, err := inRoot(root, dst)
	if err != nil {
		return err
	}
	return bind(src, target, recursive)
}

// bind mounts src on dst, making the mount point (a folder, or an empty file
// for a file) when it is missing.
func bind(src, dst string, recursive bool) error {
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("enter: %w", err)
	}
	if st.IsDir() {
		err = os.MkdirAll(dst, 0o755)
	} else if _, serr := os.Stat(dst); os.IsNotExist(serr) {
		if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
			err = os.WriteFile(dst, nil, 0o644)
		}
	}
	if err != nil {
		return fmt.Errorf("enter: mount point %s: %w", dst, err)
	}
	flags := uintptr(syscall.MS_BIND)
	if recursive {
		flags |= syscall.MS_REC
	}
	if err := syscall.Mount(src, dst, "", flags, ""); err != nil {
		return fmt.Errorf("enter: bind %s on %s: %w", src, dst, err)
	}
	return nil
}

// inRoot returns where path, as seen from inside root, is on this machine:
// symbolic links on the way are followed as they would be after chroot
// (an absolute link starts again at root), so that a mount point such as
// /var/run/secrets (with /var/run a link to /run, as in Debian) lands in
// the root, not on the host. A part that does not exist yet ends the walk.
func inRoot(root, path string) (string, error) {
	if root == "/" {
		return filepath.Clean(path), nil
	}
	rest := strings.Split(strings.TrimPrefix(filepath.Clean(path), "/"), "/")
	cur := "/"
	for hops := 0; len(rest) > 0; {
		part := rest[0]
		rest = rest[1:]
		if part == "" || part == "." {
			continue
		}
		next := filepath.Join(cur, part) // Join cleans "..", never above "/"
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			cur = next // not a link, or not there yet
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("enter: %s: too many symbolic links in %s", path, root)
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(strings.TrimPrefix(target, "/"), "/"), rest...)
	}
	return filepath.Join(root, cur), nil
}
