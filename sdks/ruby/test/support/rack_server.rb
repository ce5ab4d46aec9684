# frozen_string_literal: true

require "rack"
require "rack/handler/webrick"
require "socket"

# A Rack app served by WEBrick on a free port, in a thread of the test process: real HTTP in front of the
# middleware, as Rails, Sinatra or Hanami would run it.
class RackServer
  attr_reader :url

  def self.start(app) = new(app)

  def initialize(app)
    started = Queue.new
    @thread = Thread.new do
      Rack::Handler::WEBrick.run(app, Host: "127.0.0.1", Port: 0, Logger: WEBrick::Log.new(File::NULL),
                                      AccessLog: []) { |server| started << server }
    end
    @server = started.pop
    @url = "http://127.0.0.1:#{@server.listeners.first.addr[1]}"
  end

  def stop
    @server.shutdown
    @thread.join
  end
end
