package vaultauthextension

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/server"
	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// ServerAuditConfig joins each sender's telemetry to Vault's audit log (the
// `server.audit` block): every verified identity carries
// vault.credential.hmac, the audit HMAC of the credential it was sent with.
type ServerAuditConfig struct {
	// Device is the path of the Vault audit device whose HMAC key is used,
	// as in sys/audit-hash/<device> (e.g. file). The gateway's policy needs
	// update on sys/audit-hash/<device>.
	Device string `mapstructure:"device"`
	// OnFailure is what happens to a credential verified while Vault cannot
	// hash it: hold (tell the sender to retry: nothing passes without its
	// join key, nothing is lost), refuse (Unauthenticated), or stamp_without
	// (accept without vault.credential.hmac, and hash again 10 s later).
	OnFailure string `mapstructure:"on_failure"`

	_ struct{}
}

// OwnAuditConfig is the top-level `audit` block: the audit device this
// collector hashes its own Vault token with, for vault.credential.hmac on
// the telemetry it stamps with its own identity (vaultidentity `from: extension`).
type OwnAuditConfig struct {
	Device string `mapstructure:"device"`

	_ struct{}
}

func defaultServerAuditConfig() ServerAuditConfig {
	return ServerAuditConfig{Device: "file", OnFailure: server.AuditHold}
}

// Validate checks the `server.audit` block.
func (c *ServerAuditConfig) Validate() error {
	var errs []error
	if err := validDevice(c.Device); err != nil {
		errs = append(errs, err)
	}
	switch c.OnFailure {
	case server.AuditHold, server.AuditRefuse, server.AuditStampWithout:
	default:
		errs = append(errs, fmt.Errorf("on_failure: want %s, %s or %s, got %q", server.AuditHold, server.AuditRefuse, server.AuditStampWithout, c.OnFailure))
	}
	return errors.Join(errs...)
}

// Validate checks the top-level `audit` block.
func (c *OwnAuditConfig) Validate() error { return validDevice(c.Device) }

func validDevice(d string) error {
	d = strings.Trim(d, "/")
	if d == "" || strings.ContainsAny(d, " ?#") {
		return fmt.Errorf("device: want the audit device's path (as in `vault audit list`, e.g. file), got %q", d)
	}
	return nil
}

// errRuleFillsHMAC refuses a rule that would fill the join key from a claim.
var errRuleFillsHMAC = fmt.Errorf("%s: filled by server.audit, not by a rule", identity.CredentialHMAC)
