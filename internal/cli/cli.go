// Package cli is the allot command: `allot serve` runs the server; the other
// subcommands are a CLI over the native API.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/version"
)

// Env gives the program its environment; tests pass a map's lookup.
type Env func(key string) string

// Run runs the allot command with args (without the program name) and
// returns the process exit status: 0 success, 1 a failure or a refusal by
// the server, 2 wrong usage (an id that cannot be sent is one).
func Run(ctx context.Context, args []string, getenv Env, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(getenv, stdin, stdout, stderr)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if me, ok := errors.AsType[mistakeError](err); ok {
		fmt.Fprint(stderr, me.lines())
		return 2
	}
	if ue, ok := errors.AsType[usageError](err); ok {
		fmt.Fprintf(stderr, "allot: %s\n", printable(ue.msg))
		return 2
	}
	if ie, ok := errors.AsType[*client.InvalidIDError](err); ok {
		fmt.Fprintln(stderr, printable(ie.Error()))
		return 2
	}
	// cobra's own argument errors carry no type; they are usage errors too.
	if msg := err.Error(); strings.HasPrefix(msg, "required flag") || strings.HasPrefix(msg, "unknown command") {
		fmt.Fprintf(stderr, "allot: %s\nRun 'allot --help' for usage.\n", printable(msg))
		return 2
	}
	printError(stderr, err)
	return 1
}

// printError writes err for the operator: a refusal as the lines refusal
// built (what the server wrote in them already escaped); errors joined by
// errors.Join one to a line; any other message escaped onto one line, since
// it may quote a server's answer.
func printError(w io.Writer, err error) {
	msg := printable(err.Error())
	switch e := err.(type) {
	case problemError:
		msg = e.msg
	case interface{ Unwrap() []error }:
		for _, e := range e.Unwrap() {
			printError(w, e)
		}
		return
	}
	if !strings.HasPrefix(msg, "allot: ") {
		msg = "allot: " + msg
	}
	fmt.Fprintln(w, msg)
}

// usageError marks mistakes in how allot was called (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func newRoot(getenv Env, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "allot",
		Short:         "allot: quotas and limits for multi-tenant clouds",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get().Version,
		Args:          cobra.ArbitraryArgs,
		RunE:          subcommands, // an unknown command is named, with the closest one
	}
	// --version prints what `allot version` does; the text has no template
	// actions, so it is printed as it is.
	root.SetVersionTemplate(versionText(version.Get()))
	// A mistyped flag is one line naming it and the closest flag; wrong
	// argument counts print the usage. Both exit 2.
	root.SetFlagErrorFunc(flagMistake)
	quietGroups(root)
	root.AddCommand(newServe(getenv, stdout, stderr))
	root.AddCommand(backupCommands(getenv, stdout)...)
	root.AddCommand(migrateCommand(getenv, stdout, stderr))
	addClientCommands(root, getenv, stdin, stdout, stderr)
	return root
}

// args wraps a cobra argument check so that a wrong count is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, a []string) error {
		if err := check(c, a); err != nil {
			fmt.Fprint(c.ErrOrStderr(), c.UsageString())
			return usageError{err.Error()}
		}
		return nil
	}
}
