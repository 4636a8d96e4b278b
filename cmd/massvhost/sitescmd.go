package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"massvhost/certs"
	"massvhost/conf"
)

const sitesSynopsis = `sites <subcommand> [arguments] [--config FILE]

Host aliases map a customer's own domain to an existing tenant directory.
They live in Redis (<redis.key_prefix>site:<host>), so they need a
configuration whose certs.store uses Redis.

Subcommands:
  alias HOST TENANT   serve HOST from TENANT's directory
  unalias HOST        remove the alias
  ls                  list aliases`

func runSites(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sites", sitesSynopsis, stdout)
	configPath := fs.String("config", "", "configuration file (YAML)")
	conf.BindFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError("missing subcommand (alias, unalias, ls)")
	}
	sub, rest := fs.Arg(0), fs.Args()[1:]
	want := map[string]int{"alias": 2, "unalias": 1, "ls": 0}
	n, ok := want[sub]
	if !ok {
		return usageError("unknown subcommand %q", sub)
	}
	if len(rest) != n {
		return usageError("%s takes %d argument(s), got %d", sub, n, len(rest))
	}
	cfg, err := conf.Load(conf.LoadOptions{Path: *configPath, Flags: fs})
	if err != nil {
		return err
	}
	if !cfg.Certs.UsesRedis() {
		return errors.New("certs.store: site aliases live in Redis; set certs.store to redis or redis+files")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	_, rs, err := buildStore(cfg, logger)
	if err != nil {
		return err
	}
	defer rs.Close()
	aliases := certs.NewSiteAliases(rs)
	ctx, cancel := adminContext()
	defer cancel()
	switch sub {
	case "alias":
		if err := aliases.SetAlias(ctx, rest[0], rest[1]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s → %s\n", rest[0], rest[1])
	case "unalias":
		if err := aliases.RemoveAlias(ctx, rest[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s\n", rest[0])
	case "ls":
		return aliases.ListAliases(ctx, func(host, tenant string) error {
			_, err := fmt.Fprintf(stdout, "%s\t%s\n", host, tenant)
			return err
		})
	}
	return nil
}
