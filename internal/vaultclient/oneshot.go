package vaultclient

import (
	"context"

	"github.com/hashicorp/vault/api"
)

// Login logs in once with cfg, exactly as a Session's logins do (the token
// method looks the token up, so a bad token fails here), and returns the
// token: "" with method agent, whose token the agent adds. It does not set
// the token on client and keeps nothing alive: it is for one-shot tools
// (cmd/vaultlightstep) that finish long before a token's TTL. Errors name
// the method, mount and files, never a credential.
func Login(ctx context.Context, client *api.Client, cfg AuthConfig) (token string, err error) {
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	res, err := login(ctx, client, cfg)
	if err != nil {
		return "", err
	}
	return res.token, nil
}
