#include "cli/command.hpp"

int main(int argc, char** argv) { return gigafab::cli::run(argc, argv); }
