package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"massvhost/certs"
	"massvhost/conf"
)

const certsSynopsis = `certs <subcommand> [arguments] [--config FILE]

Subcommands:
  put NAME --cert FILE --key FILE [--force]   validate and store a pair atomically
  get NAME                                    describe the stored certificate
  rm NAME                                     delete a pair
  ls [--match GLOB]                           list stored names
  import DIR [--dry-run] [--force]            import <name>.crt/.key files or a certbot live/ tree
  expiring [--within 30d]                     list certificates expiring soon (and broken ones)
  renew NAME                                  obtain a new certificate from the ACME CA now`

// storeCommand loads the configuration and opens its certificate store for
// an admin subcommand. The returned func closes it.
func storeCommand(fs *pflag.FlagSet, configPath string) (certs.Store, func(), error) {
	cfg, err := conf.Load(conf.LoadOptions{Path: configPath, Flags: fs})
	if err != nil {
		return nil, nil, err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, rs, err := buildStore(cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	return store, func() {
		if rs != nil {
			rs.Close()
		}
	}, nil
}

// adminContext is cancelled by SIGINT/SIGTERM so an import can be
// interrupted cleanly (it is idempotent and can be rerun).
func adminContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func runCerts(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("certs", certsSynopsis, stdout)
	configPath := fs.String("config", "", "configuration file (YAML)")
	certFile := fs.String("cert", "", "put: PEM certificate chain file")
	keyFile := fs.String("key", "", "put: PEM private key file")
	force := fs.Bool("force", false, "put, import: store certificates outside their validity period")
	match := fs.String("match", "", "ls: only names matching this glob (path.Match syntax)")
	dryRun := fs.Bool("dry-run", false, "import: validate and compare, write nothing")
	within := fs.String("within", "30d", "expiring: window, a Go duration or N d (days)")
	conf.BindFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError("missing subcommand (put, get, rm, ls, import, expiring, renew)")
	}
	sub, rest := fs.Arg(0), fs.Args()[1:]
	wantArgs := map[string]int{"put": 1, "get": 1, "rm": 1, "ls": 0, "import": 1, "expiring": 0, "renew": 1}
	n, ok := wantArgs[sub]
	if !ok {
		return usageError("unknown subcommand %q", sub)
	}
	if len(rest) != n {
		return usageError("%s takes %d argument(s), got %d", sub, n, len(rest))
	}
	if sub == "put" && (*certFile == "" || *keyFile == "") {
		return usageError("put needs --cert FILE and --key FILE")
	}
	var window time.Duration
	if sub == "expiring" {
		var err error
		if window, err = parseDays(*within); err != nil {
			return usageError("--within: %v", err)
		}
	}

	if sub == "renew" {
		return runRenew(fs, *configPath, rest[0], stdout)
	}
	store, closeStore, err := storeCommand(fs, *configPath)
	if err != nil {
		return err
	}
	defer closeStore()
	ctx, cancel := adminContext()
	defer cancel()

	switch sub {
	case "put":
		certPEM, err := os.ReadFile(*certFile)
		if err != nil {
			return err
		}
		keyPEM, err := os.ReadFile(*keyFile)
		if err != nil {
			return err
		}
		w, err := writer(store)
		if err != nil {
			return err
		}
		name, leaf, err := certs.PutChecked(ctx, w, rest[0], certPEM, keyPEM, time.Now(), *force)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "stored %s (expires %s)\n", name, leaf.NotAfter.UTC().Format(time.RFC3339))
	case "get":
		st, err := certs.Inspect(ctx, store, rest[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "name:        %s\n", st.Name)
		if st.Layout != "" {
			fmt.Fprintf(stdout, "layout:      %s\n", st.Layout)
		}
		fmt.Fprintf(stdout, "subject:     %s\nsans:        %s\nissuer:      %s\nserial:      %s\nnot before:  %s\nnot after:   %s\nsha256:      %s\n",
			st.Subject, strings.Join(st.DNSNames, ", "), st.Issuer, st.Serial,
			st.NotBefore.UTC().Format(time.RFC3339), st.NotAfter.UTC().Format(time.RFC3339), st.SHA256)
	case "rm":
		w, err := writer(store)
		if err != nil {
			return err
		}
		name, err := certs.CanonicalName(rest[0])
		if err != nil {
			return err
		}
		if err := w.Delete(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s\n", name)
	case "ls":
		l, ok := store.(certs.Lister)
		if !ok {
			return fmt.Errorf("%T cannot list its names", store)
		}
		return certs.ListNames(ctx, l, *match, func(name string) error {
			_, err := fmt.Fprintln(stdout, name)
			return err
		})
	case "import":
		w, err := writer(store)
		if err != nil {
			return err
		}
		opts := certs.ImportOptions{Force: *force, DryRun: *dryRun}
		if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			opts.Progress = func(done, total int) { drawProgress(stderr, done, total) }
		}
		rep, err := certs.Import(ctx, w, rest[0], opts)
		if opts.Progress != nil {
			fmt.Fprintln(stderr)
		}
		for _, p := range rep.Invalid {
			fmt.Fprintf(stdout, "invalid: %s\n", p)
		}
		verb := "imported"
		if *dryRun {
			verb = "would import"
		}
		fmt.Fprintf(stdout, "%s %d, unchanged %d, invalid %d\n", verb, len(rep.Imported), len(rep.Unchanged), len(rep.Invalid))
		if err != nil {
			return err
		}
		if len(rep.Invalid) > 0 {
			return errSilent
		}
	case "expiring":
		ls, ok := store.(certs.ListStore)
		if !ok {
			return fmt.Errorf("%T cannot list its names", store)
		}
		found := 0
		err := certs.Expiring(ctx, ls, window, time.Now(), func(e certs.Expiry) error {
			found++
			if e.Err != nil {
				_, err := fmt.Fprintf(stdout, "%s\tunreadable: %v\n", e.Name, e.Err)
				return err
			}
			_, err := fmt.Fprintf(stdout, "%s\t%s\n", e.Name, e.NotAfter.UTC().Format(time.RFC3339))
			return err
		})
		if err != nil {
			return err
		}
		if found == 0 {
			fmt.Fprintf(stderr, "no certificate expires within %s\n", *within)
		}
	}
	return nil
}

func writer(s certs.Store) (certs.Writer, error) {
	w, ok := s.(certs.Writer)
	if !ok {
		return nil, fmt.Errorf("%T does not implement Writer", s)
	}
	return w, nil
}

// parseDays accepts a Go duration or a number of days ("30d").
func parseDays(s string) (time.Duration, error) {
	if strings.HasSuffix(s, "d") {
		var n int
		if _, err := fmt.Sscanf(strings.TrimSuffix(s, "d"), "%d", &n); err != nil || n < 0 {
			return 0, fmt.Errorf("bad number of days %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errors.New("want a duration like 720h or 30d, got " + fmt.Sprintf("%q", s))
	}
	return d, nil
}

func drawProgress(w io.Writer, done, total int) {
	const width = 40
	filled := 0
	if total > 0 {
		filled = done * width / total
	}
	fmt.Fprintf(w, "\r[%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat(" ", width-filled), done, total)
}
