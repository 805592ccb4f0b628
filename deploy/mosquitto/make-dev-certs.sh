#!/usr/bin/env bash
# Makes a throw-away CA and server certificate for trying the TLS listener. Use your PKI in a plant.
set -euo pipefail
out=${1:-$(dirname "$0")/certs}
mkdir -p "$out"
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=factory-edge dev CA" \
    -keyout "$out/ca.key" -out "$out/ca.crt"
openssl req -newkey rsa:2048 -nodes -subj "/CN=mosquitto" -keyout "$out/server.key" -out "$out/server.csr"
# Clients check the name they dial against subjectAltName; inside compose that is "mosquitto".
printf 'subjectAltName=DNS:mosquitto,DNS:localhost,IP:127.0.0.1\n' > "$out/server.ext"
openssl x509 -req -in "$out/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
    -days 365 -extfile "$out/server.ext" -out "$out/server.crt"
echo "certificates written to $out"
