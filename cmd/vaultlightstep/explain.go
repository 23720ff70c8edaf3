package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/vaultlightstep/vaultlightstep/internal/auditlog"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// vaultlightstep explain: "who granted that token?", answered from Vault
// and its audit log.

// explainConfig is a parsed `explain` command line.
type explainConfig struct {
	entity, auditLog, hmac string
	version                int
	path                   string
	role                   string // the identity token role whose grant is looked for
	vaultFlags             rotateFlags
}

func (a *app) parseExplain(args []string) (*explainConfig, error) {
	c := &explainConfig{}
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.StringVar(&c.entity, "entity", "", "a Vault entity id (a span's vault.entity.id): print its grant chain from Vault")
	fs.StringVar(&c.auditLog, "audit-log", "", "a Vault file audit device's log, for --credential-hmac and --version")
	fs.StringVar(&c.hmac, "credential-hmac", "", "a span's vault.credential.hmac: print the audit entry that issued the credential")
	fs.IntVar(&c.version, "version", 0, "a Lightstep token version (with --path): print who wrote it, and why")
	fs.StringVar(&c.path, "path", "secret/data/lightstep/prod", "KV v2 data path of the Lightstep token")
	fs.StringVar(&c.role, "role", "otel-agent", "the identity token role whose grant --entity looks for")
	c.vaultFlags.registerVault(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	asked := 0
	for _, set := range []bool{c.entity != "", c.hmac != "", c.version > 0} {
		if set {
			asked++
		}
	}
	switch {
	case asked != 1:
		return nil, errors.New("ask one question: --entity ID, --audit-log FILE --credential-hmac H, or --audit-log FILE --version N --path P")
	case (c.hmac != "" || c.version > 0) && c.auditLog == "":
		return nil, errors.New("--audit-log: required with --credential-hmac and --version")
	}
	return c, nil
}

func (a *app) explain(ctx context.Context, args []string) int {
	c, err := a.parseExplain(args)
	if errors.Is(err, flag.ErrHelp) {
		return exitSafe
	}
	if err != nil {
		_, _ = fmt.Fprintln(a.stderr, "vaultlightstep explain:", err)
		return exitUsage
	}
	switch {
	case c.hmac != "":
		err = a.explainCredential(c)
	case c.version > 0:
		err = a.explainVersion(ctx, c)
	default:
		err = a.explainEntity(ctx, c)
	}
	if err != nil {
		_, _ = fmt.Fprintln(a.stderr, "vaultlightstep explain:", err)
		return exitFailed
	}
	return exitSafe
}

// explainCredential prints the audit entries that issued the credential.
func (a *app) explainCredential(c *explainConfig) error {
	f, err := os.Open(c.auditLog)
	if err != nil {
		return fmt.Errorf("--audit-log: %w", err)
	}
	defer f.Close()
	issues, err := auditlog.FindIssues(f, c.hmac)
	if err != nil {
		return fmt.Errorf("--audit-log %s: %w", c.auditLog, err)
	}
	if len(issues) == 0 {
		return fmt.Errorf("no entry of %s issued the credential %s (issued before the device was enabled, or by another Vault or device?)", c.auditLog, c.hmac)
	}
	for _, is := range issues {
		_, _ = fmt.Fprintf(a.stdout, "credential %s was issued by:\n%s", c.hmac, is.Entry.Describe())
		_, _ = fmt.Fprintf(a.stdout, "kind:           %s\nentity:         %s\ndisplay name:   %s\npolicies:       %s\n\n",
			is.Kind, is.EntityID, is.Display, strings.Join(is.Policies, ", "))
	}
	return nil
}

// explainVersion prints the audit entry that wrote a token version, and
// (when Vault can be asked) the provenance written with it.
func (a *app) explainVersion(ctx context.Context, c *explainConfig) error {
	p, err := vaultclient.ParseKVPath(c.path)
	if err != nil {
		return fmt.Errorf("--path %w", err)
	}
	f, err := os.Open(c.auditLog)
	if err != nil {
		return fmt.Errorf("--audit-log: %w", err)
	}
	defer f.Close()
	writes, err := auditlog.FindVersionWrite(f, p.Data, c.version)
	if err != nil {
		return fmt.Errorf("--audit-log %s: %w", c.auditLog, err)
	}
	if len(writes) == 0 {
		return fmt.Errorf("no entry of %s wrote version %d of %s", c.auditLog, c.version, p.Data)
	}
	for _, e := range writes {
		_, _ = fmt.Fprintf(a.stdout, "version %d of %s was written by:\n%s", c.version, p.Data, e.Describe())
		if e.Auth != nil {
			_, _ = fmt.Fprintf(a.stdout, "entity:         %s\ndisplay name:   %s\npolicies:       %s\n",
				e.Auth.EntityID, e.Auth.DisplayName, strings.Join(e.Auth.Policies, ", "))
		}
	}
	client, logout, err := a.explainLogin(ctx, c)
	if err != nil {
		_, _ = fmt.Fprintf(a.stdout, "reason:         (not read: %s)\n", oneLine(err))
		return nil
	}
	defer logout()
	sec, err := client.Logical().ReadWithDataWithContext(ctx, p.Data, map[string][]string{"version": {strconv.Itoa(c.version)}})
	if err != nil || sec == nil {
		_, _ = fmt.Fprintf(a.stdout, "reason:         (not read: %v)\n", vaultError("read", p.Data, err))
		return nil
	}
	data, _ := sec.Data["data"].(map[string]any)
	reason, _ := data[vaultclient.RotationReasonKey].(string)
	by, _ := data[vaultclient.RotatedByKey].(string)
	_, _ = fmt.Fprintf(a.stdout, "rotated by:     %s\nreason:         %s\n", orNone(by), orNone(reason))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none recorded)"
	}
	return s
}

// explainLogin logs in with the rotate command's Vault flags.
func (a *app) explainLogin(ctx context.Context, c *explainConfig) (*api.Client, func(), error) {
	rc := &rotateConfig{}
	if err := rc.parseVault(c.vaultFlags, a.getenv); err != nil {
		return nil, nil, err
	}
	return login(ctx, rc)
}

// writeTo is a small printer for the grant chain.
type writeTo struct{ w io.Writer }

func (p writeTo) f(format string, args ...any) { _, _ = fmt.Fprintf(p.w, format, args...) }
