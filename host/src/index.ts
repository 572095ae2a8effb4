// mbedlink host SDK: public entry point.

export * from "./base/errors.js";
export type { PemBlock } from "./base/pem.js";
export { pemDecode, pemEncode } from "./base/pem.js";
export { fromHex, hex, utf8 } from "./base/util.js";
export type {
  DeviceEventMap,
  DeviceInfo,
  DeviceOptions,
  DeviceStats,
  DTLSLimits,
  OpenOptions,
  TargetOpenOptions,
  VersionInfo,
} from "./device.js";
export { Device, open } from "./device.js";
export type { AeadMode, CipherFamilyInfo, CipherOptions, PlainMode } from "./modules/cipher.js";
export {
  AEADCipher,
  Cipher,
  CipherFamily,
  CipherModule,
  MODE_CBC,
  MODE_CCM,
  MODE_CFB,
  MODE_CHACHAPOLY,
  MODE_CTR,
  MODE_ECB,
  MODE_GCM,
  MODE_OFB,
  MODE_STREAM,
  MODE_XTS,
} from "./modules/cipher.js";
export type { CmacCipher, CmacOptions } from "./modules/cmac.js";
export { Cmac, CmacModule } from "./modules/cmac.js";
export type { DTLSConfigurationOptions, DTLSConnectOptions, DTLSVersion } from "./modules/dtls.js";
export { DTLSConfiguration, DTLSContext, DTLSModule } from "./modules/dtls.js";
export type { DTLSInfo, DTLSWrapOptions } from "./modules/dtls-buffer.js";
export { DTLSWrappedBuffer, HelloVerifyRequest } from "./modules/dtls-buffer.js";
export type { DatagramCipher, DatagramConnectOptions, DTLSServerOptions, PeerAddress } from "./modules/dtls-socket.js";
export { DTLSClientSession, DTLSServer, DTLSSession } from "./modules/dtls-socket.js";
export { DTLSWrappedSocket } from "./modules/dtls-wrapped-socket.js";
export { Hash, HashModule } from "./modules/hash.js";
export { HkdfModule } from "./modules/hkdf.js";
export type { HmacOptions } from "./modules/hmac.js";
export { Hmac, HmacModule } from "./modules/hmac.js";
export { KdfModule } from "./modules/kdf.js";
export type { StaticEcdhKey } from "./modules/kex.js";
export { DEFAULT_ECDH_CURVE, DHBase, DHClient, DHServer, ECDHBase, ECDHClient, ECDHServer, KeyExchange } from "./modules/kex.js";
export { KeysModule, SymmetricKey } from "./modules/keys.js";
export type { KeyWrapMode, KeyWrapOptions, UnwrapIntoOptions } from "./modules/keywrap.js";
export { KeyWrapModule } from "./modules/keywrap.js";
export type { PrimeOptions } from "./modules/mpi.js";
export { bitLength, byteLength, fromBytes, LONG_OP_TIMEOUT_MS, MpiModule, toBytes } from "./modules/mpi.js";
export type { ECCFactory, ImportOptions, RSAFactory } from "./modules/pk.js";
export { PkModule } from "./modules/pk.js";
export type {
  EncryptionPadding,
  EncryptOptions,
  GenerateOptions,
  PkInfo,
  PrivateKeyFormat,
  PublicKeyFormat,
  SignatureScheme,
  SignOptions,
} from "./modules/pk-key.js";
export { ECC, PkKey, RSA } from "./modules/pk-key.js";
export { DEFAULT_TOKEN_BYTES, RandomModule } from "./modules/random.js";
export type { SlotInfo, StoreOptions } from "./modules/slots.js";
export { SlotsModule } from "./modules/slots.js";
export type {
  CertificateChain,
  CipherSuite,
  ConnectOptions,
  MaxFragmentLength,
  PreSharedKey,
  TLS13KeyExchangeMode,
  TLSConfigurationOptions,
  TLSVersion,
} from "./modules/tls.js";
export { TLSConfiguration, TLSContext, TLSModule } from "./modules/tls.js";
export type { TLSInfo, TLSWrapOptions, Want } from "./modules/tls-buffer.js";
export { TLSWrappedBuffer, TLSWrappedSocket, WantRead, WantWrite } from "./modules/tls-buffer.js";
export type { TLSFailure } from "./modules/tls-errors.js";
export {
  alertName,
  TLSAlertError,
  TLSCertificateError,
  TLSConnectionError,
  TLSHandshakeError,
  TLSKeyUpdateUnsupported,
  tlsError,
} from "./modules/tls-errors.js";
export { TLSSession } from "./modules/tls-session.js";
export type { CipherInfo, PeerCertificate, TLSStreamOptions } from "./modules/tls-stream.js";
export { TLSStream } from "./modules/tls-stream.js";
export { X509Module } from "./modules/x509.js";
export type { NameAttribute } from "./modules/x509-common.js";
export type { RevokedCertificate } from "./modules/x509-crl.js";
export { CRL, CrlFactory } from "./modules/x509-crl.js";
export type { BasicConstraints, KeyUsage, SubjectAlternativeName } from "./modules/x509-crt.js";
export { CRT, CrtFactory, KEY_USAGE_BITS } from "./modules/x509-crt.js";
export type { CsrOptions, ExtensionOptions, SanInput } from "./modules/x509-csr.js";
export { CSR, CsrFactory, EXTENDED_KEY_USAGE_OIDS } from "./modules/x509-csr.js";
export type {
  TrustStoreClass,
  VerifiedCertificate,
  VerifyCause,
  VerifyFlag,
  VerifyOptions,
  VerifyProfile,
  VerifyPurpose,
  VerifyResult,
} from "./modules/x509-trust.js";
export { TrustStore, verifyFlagNames } from "./modules/x509-trust.js";
export type { CertificateOptions, SelfSignOptions } from "./modules/x509-write.js";
export { setDebug } from "./rpc/debug.js";
export type { BusyInfo, CallOptions, FrameDropInfo, ResetInfo, SessionEventMap } from "./rpc/rpc.js";
export type { TLSLimits } from "./session/context.js";
export type { ResidenceState, ResidencyCounters } from "./session/residency.js";
