// placeholder, replaced by the runtime
namespace weft {}
