package bench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// pin moves every thread of process pid onto one CPU. Threads created later
// inherit the affinity of the thread that creates them, so the whole process
// stays there. It returns false if the kernel refuses.
func pin(pid, cpu int) bool {
	var set unix.CPUSet
	set.Set(cpu)
	return setAffinity(pid, &set)
}

// unpin lets every thread of process pid run on every CPU again.
func unpin(pid int) {
	var set unix.CPUSet
	for cpu := range runtime.NumCPU() {
		set.Set(cpu)
	}
	setAffinity(pid, &set)
}

func setAffinity(pid int, set *unix.CPUSet) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false
	}
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		if unix.SchedSetaffinity(tid, set) != nil {
			return false
		}
	}
	return true
}
