// The system libyaml (`pkg-config yaml-0.1`), for PartnerManifest's event reader.
#include <yaml.h>
