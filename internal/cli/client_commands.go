package cli

import (
	"io"

	"github.com/spf13/cobra"
)

// addClientCommands adds the subcommands that talk to a running server.
func addClientCommands(root *cobra.Command, getenv Env, stdin io.Reader, stdout, stderr io.Writer) {
}
