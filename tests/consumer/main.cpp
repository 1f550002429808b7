// Compiles and links against the installed weft. The runtime replaces this
// with a program that starts a Runtime and runs a task.
#include <weft/weft.hpp>

int main() { return 0; }
