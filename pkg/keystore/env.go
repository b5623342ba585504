package keystore

import "os"

// AlgorithmFromEnv returns the algorithm for new software keys from
// SECURE_LOG_KEYSTORE_ALG (SPEC §9.3): unset → ed25519; set (even to the
// empty string) → it must be exactly ed25519, ecdsa-p256 or rsa-pss-sha256,
// else *UnsupportedAlgorithmError naming the value.
func AlgorithmFromEnv() (string, error) {
	v, ok := os.LookupEnv(EnvAlgorithm)
	if !ok {
		return Ed25519, nil
	}
	return ParseAlgorithm(v)
}
