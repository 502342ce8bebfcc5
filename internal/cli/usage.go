// Mistakes in how allot was called that one line explains: an unknown
// command or flag, with the closest match, and a pointer to --help instead
// of the whole usage.

package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// mistakeError is a usage error (exit status 2) printed as its line and a
// pointer to the --help of the command it concerns.
type mistakeError struct {
	msg     string
	command string // the command path, e.g. "allot tenants"
}

func (e mistakeError) Error() string { return e.msg }

// lines is what Run prints for the mistake.
func (e mistakeError) lines() string {
	return fmt.Sprintf("allot: %s\nRun '%s --help' for usage.\n", printable(e.msg), printable(e.command))
}

// unknownCommand is the mistake of naming a subcommand c does not have.
func unknownCommand(c *cobra.Command, name string) error {
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	msg := fmt.Sprintf("unknown command `%s` for `%s`", name, c.CommandPath())
	if m := closest(name, names); m != "" {
		msg += fmt.Sprintf("; did you mean `%s`?", m)
	}
	return mistakeError{msg: msg, command: c.CommandPath()}
}

// subcommands is the Run of a command that only groups others: on its own
// it shows its help, followed by anything else it is a mistake.
func subcommands(c *cobra.Command, a []string) error {
	if len(a) == 0 {
		return c.Help()
	}
	return unknownCommand(c, a[0])
}

// flagMistake turns pflag's errors into one line in the operator's terms:
// which flag, for which command, and the closest flag it has.
func flagMistake(c *cobra.Command, err error) error {
	path := c.CommandPath()
	if ne, ok := errors.AsType[*pflag.NotExistError](err); ok {
		name := ne.GetSpecifiedName()
		var names []string
		shorthand := ne.GetSpecifiedShortnames() != ""
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Hidden {
				return
			}
			if shorthand {
				if f.Shorthand != "" {
					names = append(names, f.Shorthand)
				}
			} else {
				names = append(names, f.Name)
			}
		})
		dashes := "--"
		if shorthand {
			dashes = "-"
		}
		msg := fmt.Sprintf("unknown flag `%s%s` for `%s`", dashes, name, path)
		if m := closest(name, names); m != "" && !shorthand {
			msg += fmt.Sprintf("; did you mean `%s%s`?", dashes, m)
		}
		return mistakeError{msg: msg, command: path}
	}
	if ve, ok := errors.AsType[*pflag.ValueRequiredError](err); ok {
		return mistakeError{msg: fmt.Sprintf("flag `--%s` needs a value", ve.GetFlag().Name), command: path}
	}
	if ie, ok := errors.AsType[*pflag.InvalidValueError](err); ok {
		return mistakeError{msg: fmt.Sprintf("`%s` is not a valid value for `--%s` (%s)", ie.GetValue(), ie.GetFlag().Name,
			valueKind(ie.GetFlag())), command: path}
	}
	return mistakeError{msg: err.Error(), command: path}
}

// valueKind says in words what a flag takes.
func valueKind(f *pflag.Flag) string {
	switch t := f.Value.Type(); {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a whole number"
	case t == "duration":
		return "a duration such as 30s or 5m"
	case t == "bool":
		return "true or false"
	default:
		return "a " + t
	}
}

// closest is the candidate nearest to name: within two edits, or one
// that name begins; "" if none is near. Ties go to the first in order.
func closest(name string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range slices.Sorted(slices.Values(candidates)) {
		d := distance(strings.ToLower(name), strings.ToLower(c))
		if d >= bestD && len(name) >= 2 && strings.HasPrefix(c, name) {
			d = 2 // a prefix is as good as two edits
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b, in runes.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// quietGroups makes the usage of a command that only groups others show
// `allot tenants [command]` alone: such commands run (to name an unknown
// subcommand), but take no flags or arguments of their own.
func quietGroups(root *cobra.Command) {
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(), "{{if .Runnable}}",
		"{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
}
