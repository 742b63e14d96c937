// Command minimal is the bench's start-up floor: a Go program that does
// nothing, built with mirrorctl's flags. Its wall time is what any Go
// binary pays to be started, loaded and torn down on this machine.
package main

func main() {}
