package main

import (
	"fmt"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/spf13/cobra"
)

func newValidateCommand() *cobra.Command {
	var print bool
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check pipeline files without running them",
		Long: `Validate reads each pipeline file, expands ${ENV} references, and reports
every problem at once with its field path (unknown keys, missing or bad
values, bad consumer properties). Nothing is connected to.`,
		Example: `  sluice validate pipeline.yaml
  sluice validate --print pipelines/*.yaml   # also show the effective config, secrets redacted`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bad := 0
			for _, path := range args {
				f, err := config.LoadFile(path)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					bad++
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: OK (%d pipeline(s))\n", path, len(f.Pipelines))
				if print {
					fmt.Fprintln(cmd.OutOrStdout(), f.YAML())
				}
			}
			if bad > 0 {
				return fmt.Errorf("%d of %d file(s) invalid", bad, len(args))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&print, "print", false, "print the effective configuration with defaults applied and secrets redacted")
	return cmd
}
