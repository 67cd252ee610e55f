public enum PartnerManifestPlaceholder {}
