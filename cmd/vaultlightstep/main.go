package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes (see doc.go).
const (
	exitSafe         = 0 // every collector sends the new version
	exitFailed       = 1 // nothing could be done (login, read, write, token input)
	exitUsage        = 2
	exitConflict     = 3 // nothing written: the secret changed, or another rotation wrote first
	exitNotConfirmed = 4 // written, but not every collector sends it before --timeout
)

// app is the command with its surroundings, so tests run it in-process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	lookup         func(ctx context.Context, host string) ([]net.IPAddr, error)
	// beforeWrite, when set, runs between reading the current version and
	// writing (tests use it to line two rotations up on the same version).
	beforeWrite func()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, lookup: net.DefaultResolver.LookupIPAddr}
	code := a.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

const usage = `vaultlightstep rotates the Lightstep access token held in Vault KV v2 and
says when every collector sends the new one.

Usage:
  vaultlightstep rotate --path secret/data/lightstep/prod --token-file FILE \
      --collectors http://gw1:8888/metrics,http://gw2:8888/metrics [flags]
  vaultlightstep wait --version N --collectors-dns gateway.otel.svc:8888 [flags]
  vaultlightstep explain --entity ID                                (the grant chain, from Vault)
  vaultlightstep explain --audit-log FILE --credential-hmac HMAC    (the audit entry that issued a credential)
  vaultlightstep explain --audit-log FILE --version N --path P      (who wrote a token version, and why)

Run "vaultlightstep <command> -h" for the flags.
`

func (a *app) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		_, _ = fmt.Fprint(a.stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "rotate":
		return a.rotate(ctx, args[1:])
	case "wait":
		return a.wait(ctx, args[1:])
	case "explain":
		return a.explain(ctx, args[1:])
	case "help", "-h", "-help", "--help":
		_, _ = fmt.Fprint(a.stdout, usage)
		return exitSafe
	}
	_, _ = fmt.Fprintf(a.stderr, "unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// flagNames names the command's flags where vaultclient's errors name the
// extension's config keys.
var flagNames = strings.NewReplacer(
	"auth.token_file", "--vault-token-file",
	"auth.role_id_file", "--approle-role-id-file",
	"auth.secret_id_file", "--approle-secret-id-file",
)

// oneLine folds an error's text onto one line (api errors span several).
func oneLine(err error) string {
	return flagNames.Replace(strings.Join(strings.Fields(err.Error()), " "))
}
