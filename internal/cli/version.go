package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/internal/version"
)

// versionText is what `allot version` and `allot --version` print.
func versionText(v version.Info) string {
	return fmt.Sprintf("allot %s\n  commit  %s\n  date    %s\n  go      %s\n", v.Version, v.Commit, v.Date, v.GoVersion)
}

func versionCommand(r *remote) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit, its date and the Go version of this allot",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			v := version.Get()
			return r.show(v, func(w io.Writer) { io.WriteString(w, versionText(v)) })
		},
	}
}
