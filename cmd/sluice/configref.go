package main

import (
	"fmt"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/spf13/cobra"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the configuration reference or its JSON Schema",
		Long: `Config prints what a pipeline file may hold, generated from the same
declarations that parse, default and check it: every block and key with its
type, default and description.`,
		Example: `  sluice config docs > docs/config.md
  sluice config schema > sluice.schema.json`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "docs",
		Short: "Print the configuration reference as Markdown",
		Long: `Docs prints the configuration reference as Markdown: every block of a
pipeline file, and each key's type, default and description. It is
docs/config.md.`,
		Example: "  sluice config docs | less",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), config.Markdown())
			return err
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of a pipeline file, for editors",
		Long: `Schema prints the JSON Schema (draft-07) of a pipeline file: keys,
types, allowed values and ranges, defaults and descriptions. It is
docs/sluice.schema.json. Editors using yaml-language-server (VS Code's YAML
extension, Neovim, Helix, ...) complete and check a file that starts with

  # yaml-language-server: $schema=` + config.SchemaID + `

or with a path to a saved copy.`,
		Example: "  sluice config schema > sluice.schema.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(config.JSONSchema())
			return err
		},
	})
	return cmd
}
