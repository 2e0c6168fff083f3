// Package gcp holds what the Google Cloud connectors share: how they
// authenticate.
package gcp

import (
	"encoding/json"
	"fmt"
	"os"

	"google.golang.org/api/option"
)

// Credentials are the client options for a credentials JSON file (field is
// its config path, for errors), or none for application default
// credentials when file is empty.
func Credentials(file, field string) ([]option.ClientOption, error) {
	if file == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("%s: %s is not a JSON credentials file: %w", field, file, err)
	}
	types := map[string]option.CredentialsType{
		"service_account":              option.ServiceAccount,
		"authorized_user":              option.AuthorizedUser,
		"impersonated_service_account": option.ImpersonatedServiceAccount,
		"external_account":             option.ExternalAccount,
	}
	t, ok := types[head.Type]
	if !ok {
		return nil, fmt.Errorf("%s: credentials of type %q are not supported (service_account, authorized_user, impersonated_service_account, external_account)", field, head.Type)
	}
	return []option.ClientOption{option.WithAuthCredentialsJSON(t, raw)}, nil
}

// Secrets are the secret values of a credentials JSON file (a private key,
// a client secret, a refresh token), for masking in error texts; none when
// file is empty or cannot be read (Credentials reports that).
func Secrets(file string) []string {
	if file == "" {
		return nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var fields struct {
		PrivateKey   string `json:"private_key"`
		ClientSecret string `json:"client_secret"`
		RefreshToken string `json:"refresh_token"`
	}
	if json.Unmarshal(raw, &fields) != nil {
		return nil
	}
	var out []string
	for _, s := range []string{fields.PrivateKey, fields.ClientSecret, fields.RefreshToken} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
