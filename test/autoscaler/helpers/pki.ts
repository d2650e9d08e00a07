// Test certificates: CAs, server and client certificates signed with node-forge. Keys come
// from node:crypto because forge's pure-JS RSA key generation takes seconds per key.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface Pem {
  cert: string;
  key: string;
}

interface Issuer {
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
  pem: Pem;
}

function newKey(): { pem: string; forgeKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  return {
    pem,
    forgeKey: forge.pki.privateKeyFromPem(pem),
    publicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()) as forge.pki.rsa.PublicKey,
  };
}

function baseCertificate(publicKey: forge.pki.PublicKey, commonName: string): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 3_600_000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 3_600_000);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  return cert;
}

export class TestCA {
  readonly #issuer: Issuer;

  private constructor(issuer: Issuer) {
    this.#issuer = issuer;
  }

  static create(commonName: string): TestCA {
    const key = newKey();
    const cert = baseCertificate(key.publicKey, commonName);
    cert.setIssuer(cert.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true },
    ]);
    cert.sign(key.forgeKey, forge.md.sha256.create());
    return new TestCA({ cert, key: key.forgeKey, pem: { cert: forge.pki.certificateToPem(cert), key: key.pem } });
  }

  get certPem(): string {
    return this.#issuer.pem.cert;
  }

  /** Issues a server certificate for localhost and the loopback addresses. */
  issueServer(commonName = 'infergate-autoscaler'): Pem {
    return this.#issue(commonName, [
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
    ]);
  }

  /** Issues a client certificate with the given common name, like the front proxy's. */
  issueClient(commonName: string): Pem {
    return this.#issue(commonName, [
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', clientAuth: true },
    ]);
  }

  #issue(commonName: string, extensions: object[]): Pem {
    const key = newKey();
    const cert = baseCertificate(key.publicKey, commonName);
    cert.setIssuer(this.#issuer.cert.subject.attributes);
    cert.setExtensions([{ name: 'basicConstraints', cA: false }, ...extensions]);
    cert.sign(this.#issuer.key, forge.md.sha256.create());
    return { cert: forge.pki.certificateToPem(cert), key: key.pem };
  }
}
