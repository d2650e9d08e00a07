// TLS material of the metrics API: loaded from files (a Kubernetes Secret and the
// mounted request-header CA) and reloaded when the files change, or generated as a
// self-signed certificate for local mode and for clusters whose APIService skips
// verification.
// Files are polled by mtime, size and inode instead of fs.watch because Kubernetes
// updates a mounted Secret by swapping a symlinked directory, which fs.watch on the
// file path does not report on every platform.
import { readFileSync, statSync } from 'node:fs';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import forge from 'node-forge';
import type { Logger } from '../../../shared/src/logger.ts';

export interface TlsMaterial {
  cert: string;
  key: string;
  /** PEM bundle of the CA that signs client certificates; undefined: no client authentication. */
  ca: string | undefined;
}

export interface TlsFiles {
  certFile: string | undefined;
  keyFile: string | undefined;
  caFile: string | undefined;
}

/** Reads the files; with no cert and key files, generates a self-signed pair for `hosts`. */
export function loadTlsMaterial(files: TlsFiles, hosts: readonly string[]): TlsMaterial {
  const ca = files.caFile ? readPem(files.caFile, 'metricsApi.clientCAFile') : undefined;
  if (files.certFile && files.keyFile) {
    const material = { cert: readPem(files.certFile, 'metricsApi.tlsCertFile'), key: readPem(files.keyFile, 'metricsApi.tlsKeyFile'), ca };
    try {
      checkMaterial(material);
    } catch (error) {
      throw new TlsFileError(
        `metricsApi.tlsCertFile ${JSON.stringify(files.certFile)} and metricsApi.tlsKeyFile ${JSON.stringify(files.keyFile)} cannot be used${files.caFile ? ` with metricsApi.clientCAFile ${JSON.stringify(files.caFile)}` : ''}: ${(error as Error).message}; check that the key belongs to the certificate and that every file is valid PEM`,
        { cause: error },
      );
    }
    return material;
  }
  const generated = generateSelfSigned(hosts);
  return { ...generated, ca };
}

/** Throws when the key does not match the certificate or a PEM block is invalid. */
export function checkMaterial(material: TlsMaterial): void {
  createSecureContext({ cert: material.cert, key: material.key, ca: material.ca });
}

/**
 * Generates an RSA 2048 key with node:crypto (native, fast) and a self-signed
 * certificate valid for one year for the given DNS names and IP addresses.
 */
export function generateSelfSigned(hosts: readonly string[]): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(keyPem);
  const forgePublic = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());

  const cert = forge.pki.createCertificate();
  cert.publicKey = forgePublic;
  // A positive serial: the first byte's high bit cleared.
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 365 * 24 * 3600 * 1000);
  const subject = [{ name: 'commonName', value: 'infergate-autoscaler' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: hosts.map((host) => (isIpAddress(host) ? { type: 7, ip: host } : { type: 2, value: host })),
    },
  ]);
  cert.sign(forgeKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keyPem };
}

export interface CertificateReloaderOptions {
  files: TlsFiles;
  intervalMs: number;
  logger: Logger;
  /** The material in use; supplies the certificate and key when no files are configured for them. */
  current: () => TlsMaterial;
  /** Called with the new material after it was read and checked. */
  apply: (material: TlsMaterial) => void;
}

/** Polls the certificate files and applies new material when any of them changed. */
export class CertificateReloader {
  readonly #options: CertificateReloaderOptions;
  #fingerprint: string;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: CertificateReloaderOptions) {
    this.#options = options;
    this.#fingerprint = this.#currentFingerprint();
  }

  start(): void {
    this.#timer = setInterval(() => this.check(), this.#options.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Checks the files once; returns true when new material was applied. */
  check(): boolean {
    const fingerprint = this.#currentFingerprint();
    if (fingerprint === this.#fingerprint) return false;
    const { files, logger } = this.#options;
    try {
      const current = this.#options.current();
      const material: TlsMaterial =
        files.certFile && files.keyFile
          ? loadTlsMaterial(files, [])
          : { cert: current.cert, key: current.key, ca: files.caFile ? readPem(files.caFile, 'metricsApi.clientCAFile') : current.ca };
      checkMaterial(material);
      this.#options.apply(material);
      this.#fingerprint = fingerprint;
      logger.info({ certFile: files.certFile, caFile: files.caFile }, 'reloaded metrics API certificates');
      return true;
    } catch (error) {
      // A Secret update can be observed half-written (new cert, old key); the next check retries.
      logger.error({ err: error, certFile: files.certFile, keyFile: files.keyFile, caFile: files.caFile }, 'certificate files changed but cannot be loaded; keeping the previous certificates');
      return false;
    }
  }

  #currentFingerprint(): string {
    const { certFile, keyFile, caFile } = this.#options.files;
    return [certFile, keyFile, caFile]
      .map((file) => {
        if (!file) return '-';
        try {
          const stat = statSync(file);
          return `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
        } catch {
          return 'missing';
        }
      })
      .join('|');
  }
}

/** Raised for a certificate file that cannot be read or used; the message names the config key and the path. */
export class TlsFileError extends Error {
  readonly code = 'INFERGATE_AUTOSCALER_TLS_FILE_INVALID';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TlsFileError';
  }
}

function readPem(path: string, key: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException;
    // Node formats these messages as "ENOENT: no such file or directory, open '/path'", and the path is already named.
    const reason = /^[A-Z]+: ([^,]+)/.exec((error as Error).message)?.[1] ?? (error as Error).message;
    throw new TlsFileError(`${key}: cannot read ${JSON.stringify(path)}: ${reason}${code ? ` (${code})` : ''}; check the path and the file's permissions`, { cause: error });
  }
  if (!text.includes('-----BEGIN ')) throw new TlsFileError(`${key}: ${JSON.stringify(path)} contains no PEM block; expected a PEM-encoded file`);
  return text;
}

function isIpAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}
