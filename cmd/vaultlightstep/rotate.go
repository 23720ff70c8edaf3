package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// vaultlightstep rotate: write the new token as a new KV v2 version, then
// wait until every collector sends it.

// rotateConfig is a parsed `rotate` command line.
type rotateConfig struct {
	path          vaultclient.KVPath
	key           string
	tokenFile     string
	tokenEnv      string
	expectVersion int // -1: not given
	reason        string
	vault         vaultclient.VaultConfig
	auth          vaultclient.AuthConfig
	fleetFlags    fleetFlags
	fleet         *fleet
}

// rotateFlags are rotate's raw flags, before they are checked.
type rotateFlags struct {
	path, vaultAddr, vaultTokenFile        string
	roleIDFile, secretIDFile, approleMount string
}

// parseRotate parses rotate's flags; getenv is the environment (VAULT_TOKEN).
func (a *app) parseRotate(args []string) (*rotateConfig, error) {
	c := &rotateConfig{expectVersion: -1}
	var f rotateFlags
	fs := flag.NewFlagSet("rotate", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.StringVar(&f.path, "path", "", "KV v2 data path of the token (secret/data/lightstep/prod; {tenant} is replaced by --tenant)")
	fs.StringVar(&c.key, "key", "access_token", "the key holding the token in the secret's data")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding the new Lightstep token (default: read it from stdin)")
	fs.StringVar(&c.tokenEnv, "token-env", "", "name of an environment variable holding the new Lightstep token")
	fs.Func("expect-version", "refuse unless the secret's current version is N (0: the secret does not exist yet)", func(s string) error {
		n, err := parseNonNegative(s)
		c.expectVersion = n
		return err
	})
	fs.StringVar(&c.reason, "reason", "", "why the token is rotated: written with the new version (key "+vaultclient.RotationReasonKey+
		") beside who rotated ("+vaultclient.RotatedByKey+"), shown by the collectors' audit events and `vaultlightstep explain --version`")
	f.registerVault(fs)
	c.fleetFlags.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (the token is never an argument: use --token-file, --token-env or stdin)", fs.Arg(0))
	}
	var err error
	if err = c.parseSecret(f.path); err != nil {
		return nil, err
	}
	if err = c.parseVault(f, a.getenv); err != nil {
		return nil, err
	}
	if c.fleet, err = c.fleetFlags.fleet(a.lookup); err != nil {
		return nil, err
	}
	return c, nil
}

// registerVault registers the flags that say where Vault is and how to log in.
func (f *rotateFlags) registerVault(fs *flag.FlagSet) {
	fs.StringVar(&f.vaultAddr, "vault-addr", "", "Vault's address (default $VAULT_ADDR)")
	fs.StringVar(&f.vaultTokenFile, "vault-token-file", "", "file holding a Vault token (default $VAULT_TOKEN)")
	fs.StringVar(&f.roleIDFile, "approle-role-id-file", "", "AppRole login: file holding the role id")
	fs.StringVar(&f.secretIDFile, "approle-secret-id-file", "", "AppRole login: file holding the secret id")
	fs.StringVar(&f.secretIDFile, "secret-id-file", "", "same as --approle-secret-id-file")
	fs.StringVar(&f.approleMount, "approle-mount", "approle", "AppRole login: the auth method's mount path")
}

// parseSecret checks what is written: the path ({tenant} filled), the key,
// where the token comes from.
func (c *rotateConfig) parseSecret(path string) error {
	if strings.Contains(path, "{tenant}") {
		if c.fleetFlags.tenant == "" {
			return fmt.Errorf("--path %s has {tenant}: --tenant is required", path)
		}
		if err := identity.ValidTenant(c.fleetFlags.tenant); err != nil {
			return fmt.Errorf("--tenant: %w", err)
		}
		path = strings.ReplaceAll(path, "{tenant}", c.fleetFlags.tenant)
	}
	if path == "" {
		return errors.New("--path: required (e.g. secret/data/lightstep/prod)")
	}
	p, err := vaultclient.ParseKVPath(path)
	if err != nil {
		return fmt.Errorf("--path %w", err)
	}
	c.path = p
	if c.key == "" {
		return errors.New("--key: required")
	}
	if c.tokenFile != "" && c.tokenEnv != "" {
		return errors.New("--token-file and --token-env: give one")
	}
	return nil
}

// parseVault checks where Vault is and how the command logs in.
func (c *rotateConfig) parseVault(f rotateFlags, getenv func(string) string) error {
	c.vault = vaultclient.DefaultVaultConfig()
	c.vault.Address = f.vaultAddr
	if c.vault.Address == "" {
		c.vault.Address = getenv("VAULT_ADDR")
	}
	if c.vault.Address == "" {
		return errors.New("no Vault address: set VAULT_ADDR or --vault-addr")
	}
	c.auth = vaultclient.DefaultAuthConfig()
	appRole := f.roleIDFile != "" || f.secretIDFile != ""
	switch {
	case appRole && f.vaultTokenFile != "":
		return errors.New("--vault-token-file and --approle-*: log in one way")
	case appRole:
		if f.roleIDFile == "" || f.secretIDFile == "" {
			return errors.New("AppRole login needs --approle-role-id-file and --approle-secret-id-file")
		}
		c.auth.Method, c.auth.MountPath = vaultclient.MethodAppRole, f.approleMount
		c.auth.RoleIDFile, c.auth.SecretIDFile = f.roleIDFile, f.secretIDFile
	case f.vaultTokenFile != "":
		c.auth.TokenFile = f.vaultTokenFile
	case getenv("VAULT_TOKEN") != "":
		c.auth.Token = configopaque.String(getenv("VAULT_TOKEN"))
	default:
		return errors.New("no Vault login: set VAULT_TOKEN, or --vault-token-file, or --approle-role-id-file and --approle-secret-id-file")
	}
	return nil
}

func parseNonNegative(s string) (int, error) {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil || n < 0 || fmt.Sprint(n) != strings.TrimSpace(s) {
		return 0, errors.New("want a version number (0 or more)")
	}
	return n, nil
}

// newToken reads the new Lightstep token from --token-file, --token-env or
// stdin. Errors name the source, never the content.
func (a *app) newToken(c *rotateConfig) (string, error) {
	var (
		raw    []byte
		source string
		err    error
	)
	switch {
	case c.tokenFile != "":
		source = c.tokenFile
		raw, err = os.ReadFile(c.tokenFile)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
	case c.tokenEnv != "":
		source = "$" + c.tokenEnv
		raw = []byte(a.getenv(c.tokenEnv))
	default:
		source = "stdin"
		if f, ok := a.stdin.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				return "", errors.New("no token: give --token-file or --token-env, or pipe the token on stdin (it is not read from a terminal, where it would show)")
			}
		}
		raw, err = io.ReadAll(io.LimitReader(a.stdin, 64<<10))
		if err != nil {
			return "", fmt.Errorf("stdin: %w", err)
		}
	}
	token := strings.TrimSpace(string(raw))
	switch {
	case token == "":
		return "", fmt.Errorf("the new token from %s is empty", source)
	case strings.ContainsAny(token, " \t\r\n"):
		return "", fmt.Errorf("the new token from %s holds whitespace or several lines: give the token alone", source)
	}
	return token, nil
}

func (a *app) rotate(ctx context.Context, args []string) int {
	c, err := a.parseRotate(args)
	if errors.Is(err, flag.ErrHelp) {
		return exitSafe
	}
	if err != nil {
		_, _ = fmt.Fprintln(a.stderr, "vaultlightstep rotate:", err)
		return exitUsage
	}
	token, err := a.newToken(c)
	if err != nil {
		_, _ = fmt.Fprintln(a.stderr, "vaultlightstep rotate:", err)
		return exitFailed
	}
	client, logout, err := login(ctx, c)
	if err != nil {
		return a.rotateFailed(err)
	}
	defer logout()

	// What the collectors send now, before anything changes: a wrong
	// --extension or --tenant shows here.
	before := c.fleet.round(ctx, 5*time.Second)
	_, _ = fmt.Fprintln(a.stdout, "before: "+summarize(before))

	written := time.Now()
	version, err := a.write(ctx, client, c, token)
	if err != nil {
		return a.rotateFailed(err)
	}
	res := c.fleet.waitFor(ctx, a.stdout, version, c.fleetFlags.timeout, c.fleetFlags.interval)
	if res.ok {
		_, _ = fmt.Fprintf(a.stderr, "(%s after the write)\n", time.Since(written).Round(100*time.Millisecond))
		return exitSafe
	}
	why := fmt.Sprintf("not confirmed after %s", c.fleetFlags.timeout)
	if ctx.Err() != nil {
		why = "interrupted"
	}
	reportLagging(a.stderr, res, version, "version "+fmt.Sprint(version)+" is written, but "+why)
	_, _ = fmt.Fprintf(a.stderr, "to keep waiting without writing again: vaultlightstep wait --version %d %s\n", version, c.fleetFlags.waitArgs())
	return exitNotConfirmed
}

// provenance is what is written beside the token: who rotates (this
// login's entity) and why; a key without a value is removed, so a version
// never inherits the previous one's reason. who says it for a person.
func provenance(ctx context.Context, client *api.Client, reason string) (map[string]any, string) {
	prov := map[string]any{vaultclient.RotatedByKey: nil, vaultclient.RotationReasonKey: nil}
	if reason != "" {
		prov[vaultclient.RotationReasonKey] = reason
	}
	who := "a token without an entity"
	if sec, err := client.Auth().Token().LookupSelfWithContext(ctx); err == nil && sec != nil {
		if id, _ := sec.Data["entity_id"].(string); id != "" {
			prov[vaultclient.RotatedByKey] = id
			who = "entity " + id
		}
		if name, _ := sec.Data["display_name"].(string); name != "" {
			who += " (" + name + ")"
		}
	}
	return prov, who
}

// rotateFailed says why nothing more can be done, and exits accordingly.
func (a *app) rotateFailed(err error) int {
	_, _ = fmt.Fprintln(a.stderr, "vaultlightstep rotate:", err)
	if errors.Is(err, errConflict) {
		return exitConflict
	}
	return exitFailed
}

// login logs in to Vault as the command line says; logout revokes a token
// the login made (an AppRole login's is the command's alone).
func login(ctx context.Context, c *rotateConfig) (*api.Client, func(), error) {
	client, err := vaultclient.NewClient(ctx, c.vault)
	if err != nil {
		return nil, nil, err
	}
	vaultToken, err := vaultclient.Login(ctx, client, c.auth)
	if err != nil {
		return nil, nil, fmt.Errorf("login to Vault at %s: %s", client.Address(), oneLine(err))
	}
	client.SetToken(vaultToken)
	logout := func() {}
	if c.auth.Method == vaultclient.MethodAppRole {
		logout = func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = client.Auth().Token().RevokeSelfWithContext(rctx, "")
		}
	}
	return client, logout, nil
}

// write writes the new version, with check-and-set on the version read
// (and --expect-version, if given), and returns it.
func (a *app) write(ctx context.Context, client *api.Client, c *rotateConfig, token string) (int, error) {
	current, err := vaultclient.CurrentVersion(ctx, client.Logical(), c.path)
	switch {
	case vaultclient.IsNotFound(err):
		current = 0 // the secret does not exist yet
	case err != nil:
		return 0, vaultError("read", c.path.Metadata, errors.Unwrap(err))
	}
	if c.expectVersion >= 0 && current != c.expectVersion {
		return 0, fmt.Errorf("%w: %s is at version %d, not %d as expected: the secret changed since you last looked; nothing written",
			errConflict, c.path.Data, current, c.expectVersion)
	}
	if a.beforeWrite != nil {
		a.beforeWrite()
	}
	note := func(s string) { _, _ = fmt.Fprintln(a.stderr, "note: "+s) }
	prov, who := provenance(ctx, client, c.reason)
	version, requestID, err := writeVersion(ctx, client, c.path, c.key, token, current, prov, note)
	if err != nil {
		return 0, err
	}
	_, _ = fmt.Fprintf(a.stdout, "wrote version %d of %s (key %s, check-and-set on version %d); Vault request id %s; rotated by %s, reason %q; waiting up to %s for the collectors\n",
		version, c.path.Data, c.key, current, requestID, who, c.reason, c.fleetFlags.timeout)
	return version, nil
}
